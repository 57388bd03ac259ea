// The compiled program alone: `bun run build`'s binary, copied by itself into an empty directory
// (no node_modules, no repository, no drizzle/), migrates a fresh database in production, serves
// the proof of concept's sequence and /swagger, answers its own healthcheck, administers and
// records the audit trail.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { MIGRATIONS } from '../src/db/migrations'
import { connectRedis, createRedis } from '../src/store'
import { cookieFrom, http, processEnv, runToEnd, type ServerProcess, spawnServer, startCli, waitFor } from './processes'
import { ADMIN_PASSWORD, databaseUrlFor, deleteKeys, REDIS_URL, suffix } from './services'

const ROOT = join(import.meta.dir, '..')
const work = mkdtempSync(join(tmpdir(), 'tessera-binary-'))
/** Where the binary runs: a directory holding nothing but it. */
const runDir = join(work, 'run')
const binary = join(runDir, 'tessera')
const databaseName = `tessera_test_binary_${suffix()}`
const prefix = `test:binary:${suffix()}:`
const vars = {
  NODE_ENV: 'production',
  DATABASE_URL: databaseUrlFor(databaseName),
  REDIS_URL,
  REDIS_KEY_PREFIX: prefix,
}
let server: ServerProcess | undefined

beforeAll(async () => {
  const built = join(work, 'build', 'tessera')
  const build = Bun.spawn(['bun', 'scripts/build.ts', '--outfile', built], {
    cwd: ROOT,
    stdout: 'pipe',
    stderr: 'pipe',
  })
  if ((await build.exited) !== 0) throw new Error(`build failed: ${await new Response(build.stderr).text()}`)
  mkdirSync(runDir)
  copyFileSync(built, binary)
}, 180_000)

afterAll(async () => {
  await server?.stop()
  const admin = postgres(databaseUrlFor('postgres'), { max: 1, onnotice: () => {} })
  try {
    await admin.unsafe(`drop database if exists "${databaseName}" with (force)`)
  } finally {
    await admin.end({ timeout: 5 })
  }
  const redis = createRedis(REDIS_URL)
  await connectRedis(redis)
  await deleteKeys(redis, prefix)
  await redis.quit()
  rmSync(work, { recursive: true, force: true })
})

/** Runs the binary in its directory to its end. */
function run(args: string[], extra: Record<string, string> = {}) {
  return runToEnd([binary, ...args], { cwd: runDir, env: processEnv({ ...vars, ...extra }) })
}

describe('the compiled binary, alone in an empty directory', () => {
  test('migrates a fresh database in production with its embedded migrations', async () => {
    expect(readdirSync(runDir)).toEqual(['tessera'])
    const migrated = await run(['migrate'])
    expect(migrated).toMatchObject({ code: 0, stderr: '' })
    expect(migrated.stdout).toContain(`applied ${MIGRATIONS.map((m) => m.tag).join(', ')}`)
  }, 30_000)

  test("serves the proof of concept's sequence: 401, 201, 200, 403, 200, 200", async () => {
    server = spawnServer(vars, { root: runDir, command: [binary, 'serve'] })
    await waitFor(async () => (await fetch(`${server?.url}/readyz`)).status === 200, 20_000, 'the binary ready')
    const base = server.url
    const grant = { body: { username: 'bob', permission: 'user:assign' } }

    expect((await http(base, 'POST', '/user/assign', grant)).status).toBe(401)
    const register = await http(base, 'POST', '/user', { body: { username: 'bob', password: 'bob-password-1' } })
    expect(register.status).toBe(201)
    const login = await http(base, 'POST', '/user/login', { body: { username: 'bob', password: 'bob-password-1' } })
    expect(login.status).toBe(200)
    const bob = cookieFrom(login)
    expect((await http(base, 'POST', '/user/assign', { ...grant, cookie: bob })).status).toBe(403)
    const adminLogin = await http(base, 'POST', '/user/login', {
      body: { username: 'admin', password: ADMIN_PASSWORD },
    })
    expect(adminLogin.status).toBe(200)
    expect((await http(base, 'POST', '/user/assign', { ...grant, cookie: cookieFrom(adminLogin) })).status).toBe(200)
    const me = (await (await http(base, 'GET', '/user/me', { cookie: bob })).json()) as { permissions: string[] }
    expect(me.permissions).toContain('user:assign')
  }, 40_000)

  test('serves Swagger UI and its embedded assets', async () => {
    const base = server?.url ?? ''
    const page = await fetch(`${base}/swagger`)
    expect(page.status).toBe(200)
    expect(await page.text()).toContain('/swagger/assets/swagger-ui-bundle.js')
    const bundle = await fetch(`${base}/swagger/assets/swagger-ui-bundle.js`)
    expect(bundle.status).toBe(200)
    expect((await bundle.arrayBuffer()).byteLength).toBeGreaterThan(500_000)
    expect((await fetch(`${base}/swagger/assets/swagger-ui.css`)).status).toBe(200)
    expect((await fetch(`${base}/swagger/json`)).status).toBe(200)
  })

  test('healthcheck exits 0 while the server is ready, 1 when nothing answers', async () => {
    expect((await run(['healthcheck'], { PORT: String(server?.port) })).code).toBe(0)
    const none = await run(['healthcheck'], { PORT: '1' })
    expect(none.code).toBe(1)
    expect(none.stderr).toStartWith('tessera: http://127.0.0.1:1/readyz did not answer')
  }, 20_000)

  test('admin changes are recorded by its own audit consumer, naming the operator', async () => {
    const revoked = await run(['admin', 'permissions', 'revoke', 'bob', 'user:assign'])
    expect(revoked).toMatchObject({ code: 0, stderr: '' })
    expect(revoked.stdout).toStartWith('revoked user:assign from bob')
    const consumer = startCli([binary, 'audit'], { ...vars, AUDIT_CONSUMER_NAME: 'binary-test' }, runDir)
    const sql = postgres(vars.DATABASE_URL, { max: 1, onnotice: () => {} })
    try {
      await waitFor(
        async () =>
          (await sql`select 1 from audit_events where type = 'permission_revoked' and data ? 'operator'`).length === 1,
        15_000,
        `the revoke in audit_events\n${consumer.output()}`,
      )
    } finally {
      await sql.end({ timeout: 5 })
      await consumer.stop()
    }
  }, 30_000)

  test('a .env file where it starts changes nothing: configuration is the environment alone', async () => {
    writeFileSync(join(runDir, '.env'), 'SESSION_IDLE_TIMEOUT=soon\nDATABASE_URL=postgres://nowhere.invalid/x\n')
    try {
      expect(await run(['migrate'])).toMatchObject({ code: 0, stdout: expect.stringContaining('is up to date') })
    } finally {
      rmSync(join(runDir, '.env'))
    }
  }, 20_000)
})
