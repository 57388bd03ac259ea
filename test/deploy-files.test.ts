// Dockerfile, docker-compose.yml and deploy/nginx.conf cannot be built or run here (no Docker
// engine), so this checks what can be checked without one: every command they give the binary is a
// command of the CLI, every variable they set is one the configuration reads (and the values pass
// it), every file they name exists, every service they name is defined, and the ports agree.

import { describe, expect, test } from 'bun:test'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Command } from 'commander'
import { createProgram } from '../src/cli/tessera'
import { configVariables, loadConfig } from '../src/config'

const ROOT = join(import.meta.dir, '..')
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8')

type Service = {
  image?: string
  build?: string
  command?: string[]
  profiles?: string[]
  environment?: Record<string, string>
  ports?: string[]
  volumes?: string[]
  depends_on?: Record<string, { condition: string }>
  healthcheck?: { test?: string[]; disable?: boolean }
}
const compose = Bun.YAML.parse(read('docker-compose.yml')) as { services: Record<string, Service> }
const services = compose.services
/** The services that run this repository's image. */
const tesseraServices = Object.entries(services).filter(([, service]) => service.build === '.')

/** Variables the other images read (redis, postgres, nginx), by name. */
const IMAGE_VARIABLES = new Set(['POSTGRES_USER', 'POSTGRES_HOST_AUTH_METHOD', 'POSTGRES_DB'])
const CONFIG_VARIABLES = new Set(configVariables().map((variable) => variable.env))
const DEFAULT_PORT = configVariables().find((variable) => variable.env === 'PORT')?.default ?? ''

/** The Dockerfile's instructions, continuation lines joined, comments dropped. */
const dockerfile = read('Dockerfile')
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line && !line.startsWith('#'))
  .map((line) => {
    const [instruction = '', ...rest] = line.split(/\s+/)
    return { instruction: instruction.toUpperCase(), args: rest.join(' ') }
  })
const instructions = (name: string) => dockerfile.filter((line) => line.instruction === name).map((line) => line.args)
const execForm = (args: string) => JSON.parse(args) as string[]

/** True when `args` (a command line after the binary) names a command of the CLI. */
function isCliCommand(args: string[]): boolean {
  let command: Command = createProgram()
  const words = args.filter((arg) => !arg.startsWith('-'))
  for (const [index, word] of words.entries()) {
    const sub = command.commands.find((c) => c.name() === word)
    // A word that is no subcommand must be one of the command's declared arguments.
    if (!sub) return index > 0 && command.registeredArguments.length >= words.length - index
    command = sub
  }
  return words.length > 0
}

/** `${NAME}`, `${NAME:-default}` and friends in a Compose value: the names it interpolates. */
const interpolated = (value: string) => [...value.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1] as string)
/** A value as Compose would pass it with every interpolated variable unset (defaults applied). */
const withDefaults = (value: string) => value.replace(/\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}/g, '$1')

describe('Dockerfile', () => {
  test('two stages: the compiled binary alone is copied from the build stage into the final image', () => {
    const stages = instructions('FROM')
    expect(stages).toHaveLength(2)
    expect(stages[0]).toMatch(/^oven\/bun:\S+ AS build$/)
    const copies = instructions('COPY')
    const fromBuild = copies.filter((args) => args.startsWith('--from='))
    expect(fromBuild).toEqual(['--from=build /out/tessera /usr/local/bin/tessera'])
    expect(instructions('RUN')).toContain('bun scripts/build.ts --outfile /out/tessera')
  })

  test('every file the build stage copies exists, and .dockerignore keeps node_modules out', () => {
    for (const args of instructions('COPY').filter((a) => !a.startsWith('--'))) {
      const sources = args.split(/\s+/).slice(0, -1)
      for (const source of sources)
        expect({ source, exists: existsSync(join(ROOT, source)) }).toEqual({ source, exists: true })
    }
    expect(read('.dockerignore').split('\n')).toContain('node_modules')
  })

  test('runs as a non-root user, exposes the default PORT, and its commands are the CLI’s', () => {
    const [user] = instructions('USER')
    expect(user).toBeDefined()
    expect(['root', '0', '0:0']).not.toContain(user)
    expect(instructions('EXPOSE')).toEqual([DEFAULT_PORT])
    const [entrypoint] = instructions('ENTRYPOINT').map(execForm)
    expect(entrypoint).toEqual(['/usr/local/bin/tessera'])
    expect(isCliCommand(execForm(instructions('CMD')[0] ?? '[]'))).toBe(true)
    const healthcheck = instructions('HEALTHCHECK')[0] ?? ''
    const probe = execForm(healthcheck.slice(healthcheck.indexOf('CMD ') + 4))
    expect(probe[0]).toBe(entrypoint?.[0])
    expect(probe.slice(1)).toEqual(['healthcheck'])
    expect(isCliCommand(probe.slice(1))).toBe(true)
  })

  test('every variable it sets is read by the configuration', () => {
    const names = instructions('ENV').flatMap((args) => args.split(/\s+/).map((pair) => pair.split('=')[0]))
    expect(names.filter((name) => !CONFIG_VARIABLES.has(name ?? ''))).toEqual([])
  })
})

describe('docker-compose.yml', () => {
  test('by default, Redis and PostgreSQL alone; the full profile adds migrate, two instances, audit, nginx', () => {
    const byDefault = Object.keys(services).filter((name) => !services[name]?.profiles)
    expect(byDefault.sort()).toEqual(['postgres', 'redis'])
    const full = Object.keys(services).filter((name) => services[name]?.profiles?.includes('full'))
    expect(full.sort()).toEqual(['audit', 'migrate', 'nginx', 'tessera-a', 'tessera-b'])
  })

  test('every command given to the image is a command of the CLI', () => {
    expect(tesseraServices.length).toBe(4)
    for (const [name, service] of tesseraServices) {
      expect({ name, image: service.image }).toEqual({ name, image: 'tessera:local' })
      // No command: the image's CMD (serve).
      if (service.command) expect({ name, command: isCliCommand(service.command) }).toEqual({ name, command: true })
    }
    expect(services.migrate?.command).toEqual(['migrate'])
    expect(services.audit?.command).toEqual(['audit'])
  })

  test('every variable is read by Tessera’s configuration or the image it is given to', () => {
    for (const [name, service] of Object.entries(services)) {
      const known = service.build === '.' ? CONFIG_VARIABLES : IMAGE_VARIABLES
      const env = service.environment ?? {}
      const names = [...Object.keys(env), ...Object.values(env).flatMap(interpolated)]
      expect({ name, unknown: names.filter((variable) => !known.has(variable)) }).toEqual({ name, unknown: [] })
    }
  })

  test("each instance's environment passes the configuration in production, ADMIN_PASSWORD given", () => {
    for (const [name, service] of tesseraServices) {
      const env = Object.fromEntries(Object.entries(service.environment ?? {}).map(([k, v]) => [k, withDefaults(v)]))
      const config = loadConfig({ ...env, ADMIN_PASSWORD: 'a-compose-password' })
      expect({ name, production: config.production, migrateOnBoot: config.migrateOnBoot }).toEqual({
        name,
        production: true,
        migrateOnBoot: false,
      })
      // Without it, production refuses to start: Compose passes an empty value.
      expect(() => loadConfig(env)).toThrow(/^ADMIN_PASSWORD: is required/)
      for (const url of [config.databaseUrl, config.redisUrl]) {
        const host = new URL(url).hostname
        expect({ name, url, service: host in services }).toEqual({ name, url, service: true })
      }
    }
  })

  test('instances start after migrate completes; every dependency is a defined service', () => {
    for (const name of ['tessera-a', 'tessera-b', 'audit']) {
      expect(services[name]?.depends_on?.migrate).toEqual({ condition: 'service_completed_successfully' })
    }
    for (const [name, service] of Object.entries(services)) {
      for (const dependency of Object.keys(service.depends_on ?? {})) {
        expect({ name, dependency, defined: dependency in services }).toEqual({ name, dependency, defined: true })
      }
    }
  })

  test('every file it mounts exists', () => {
    for (const service of Object.values(services)) {
      for (const volume of service.volumes ?? []) {
        const [source = ''] = volume.split(':')
        if (source.startsWith('./'))
          expect({ source, exists: existsSync(join(ROOT, source)) }).toEqual({ source, exists: true })
      }
    }
  })
})

describe('deploy/nginx.conf', () => {
  const nginx = read('deploy/nginx.conf')

  test('balances exactly the instances, on the port they listen on', () => {
    const upstream = /upstream tessera \{([^}]*)\}/.exec(nginx)?.[1] ?? ''
    const servers = [...upstream.matchAll(/^\s*server\s+([^:\s;]+):(\d+)/gm)].map((m) => ({
      host: m[1] ?? '',
      port: m[2] ?? '',
    }))
    expect(servers.map(({ host }) => host)).toEqual(['tessera-a', 'tessera-b'])
    for (const { host, port } of servers) {
      const service = services[host] as Service
      expect(service.command).toBeUndefined()
      expect(port).toBe(service.environment?.PORT ?? DEFAULT_PORT)
      expect(instructions('EXPOSE')).toContain(port)
      expect(Object.keys(services.nginx?.depends_on ?? {})).toContain(host)
    }
    expect(nginx).toContain('proxy_pass http://tessera;')
  })

  test('listens on the port Compose publishes', () => {
    const listen = /^\s*listen\s+(\d+);/m.exec(nginx)?.[1]
    const published = (services.nginx?.ports ?? []).map((mapping) => mapping.split(':').at(-1))
    expect(published).toEqual([listen])
  })
})
