// `bun src/index.ts` as a real process: a dead Redis or PostgreSQL ends it within 10 s with one
// line naming the URL and `docker compose up -d`; two instances racing on one brand-new database
// both come up and apply each migration once (issue 2 point 3).

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { fileURLToPath } from 'node:url'
import postgres from 'postgres'
import {
  ADMIN_PASSWORD,
  createTestEnv,
  databaseUrlFor,
  deleteKeys,
  freePort,
  PG_BASE,
  REDIS_URL,
  type TestEnv,
} from './helpers'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const ENTRY = fileURLToPath(new URL('../src/index.ts', import.meta.url))

let env: TestEnv
const spawned: Bun.Subprocess[] = []
const dropDatabases: string[] = []

beforeAll(async () => {
  env = await createTestEnv('boot')
})
afterAll(async () => {
  for (const child of spawned) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await child.exited
  }
  const admin = postgres(databaseUrlFor('postgres'), { max: 1, onnotice: () => {} })
  try {
    for (const name of dropDatabases) await admin.unsafe(`drop database if exists "${name}" with (force)`)
  } finally {
    await admin.end({ timeout: 5 })
  }
  // Spawned instances write under `${env.prefix}proc...`, which env.close() deletes too.
  await deleteKeys(env.redis, env.prefix)
  await env.close()
})

/** Starts one instance with a test environment; stdout and stderr are captured. */
function start(vars: Record<string, string>): Bun.Subprocess<'ignore', 'pipe', 'pipe'> {
  const child = Bun.spawn(['bun', ENTRY], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      NODE_ENV: 'test',
      ADMIN_PASSWORD,
      LOG_LEVEL: 'silent',
      HOST: '127.0.0.1',
      PORT: String(freePort()),
      REDIS_URL,
      REDIS_KEY_PREFIX: `${env.prefix}proc:`,
      DATABASE_URL: env.databaseUrl,
      ...vars,
    },
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
  })
  spawned.push(child)
  return child
}

async function expectQuickExit(vars: Record<string, string>, url: string) {
  const started = performance.now()
  const child = start(vars)
  const code = await child.exited
  const elapsed = performance.now() - started
  const output = `${await new Response(child.stdout).text()}${await new Response(child.stderr).text()}`
  expect(code).not.toBe(0)
  expect(elapsed).toBeLessThan(10_000)
  const lines = output.trim().split('\n')
  expect(lines).toHaveLength(1)
  expect(lines[0]).toContain(url)
  expect(lines[0]).toContain('docker compose up -d')
}

describe('a dependency that cannot be reached at boot', () => {
  test('a dead REDIS_URL ends the process within 10 s with one line naming it', async () => {
    const url = `redis://127.0.0.1:${freePort()}/0`
    await expectQuickExit({ REDIS_URL: url }, url)
  }, 15_000)

  test('a dead DATABASE_URL ends the process within 10 s with one line naming it', async () => {
    const url = new URL(PG_BASE)
    url.port = String(freePort())
    url.pathname = '/tessera'
    await expectQuickExit({ DATABASE_URL: url.toString() }, url.toString())
  }, 15_000)

  test('an invalid variable ends the process with one line naming it', async () => {
    const child = start({ SESSION_IDLE_TIMEOUT: 'soon' })
    expect(await child.exited).not.toBe(0)
    const output = `${await new Response(child.stdout).text()}${await new Response(child.stderr).text()}`
    expect(output.trim().split('\n')).toHaveLength(1)
    expect(output).toContain('SESSION_IDLE_TIMEOUT')
  }, 15_000)
})

describe('two instances racing on one brand-new database', () => {
  test('both come up and every migration is applied exactly once', async () => {
    const name = `tessera_test_boot_race_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`
    dropDatabases.push(name)
    const databaseUrl = databaseUrlFor(name)
    const ports = [freePort(), freePort()]
    const children = ports.map((port) => start({ DATABASE_URL: databaseUrl, PORT: String(port) }))

    const healthy = async (port: number) => {
      const deadline = Date.now() + 15_000
      while (Date.now() < deadline) {
        const response = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined)
        if (response?.status === 200) return true
        if (children.some((c) => c.exitCode !== null)) return false
        await Bun.sleep(100)
      }
      return false
    }
    const up = await Promise.all(ports.map(healthy))
    if (!up.every(Boolean)) {
      for (const child of children) child.kill('SIGKILL')
      const output = await Promise.all(children.map((c) => new Response(c.stderr).text()))
      throw new Error(`instances did not come up: ${up} ${output.join(' | ')}`)
    }

    const journal = (await Bun.file(new URL('../drizzle/meta/_journal.json', import.meta.url)).json()) as {
      entries: unknown[]
    }
    const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} })
    try {
      const rows = await sql<{ hash: string; n: number }[]>`
        select hash, count(*)::int as n from drizzle.__drizzle_migrations group by hash`
      expect(rows).toHaveLength(journal.entries.length)
      for (const row of rows) expect(row.n).toBe(1)
      // And the admin exists once.
      const admins = await sql<{ n: number }[]>`select count(*)::int as n from users where lower(username) = 'admin'`
      expect(admins[0]?.n).toBe(1)
    } finally {
      await sql.end({ timeout: 5 })
    }
    for (const child of children) {
      child.kill('SIGTERM')
      expect(await child.exited).toBe(0)
    }
  }, 30_000)
})
