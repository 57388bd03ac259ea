// PostgreSQL passwords and TLS for real, against a cluster the test owns (initdb and pg_ctl on a
// port of its own; the shared server trusts 127.0.0.1 and enforces no password): scram-sha-256
// passwords, TLS required (plain connections refused by pg_hba.conf), and a server certificate
// for `localhost` from the test's own CA. Every sslmode is tried, and a real server boots with
// verify-full; a wrong password or a host name the certificate does not name ends the boot with
// one line that holds no password.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Redis from 'ioredis'
import { openPostgres } from '../src/db/client'
import { type Certificates, makeCertificates } from './certificates'
import { deleteKeys, freePort, REDIS_URL } from './helpers'
import { http, loginVia, type ServerProcess, spawnServer, startServer } from './processes'
import { runOrThrow } from './services'

const PG_BIN = process.env.TEST_PG_BIN ?? '/usr/lib/postgresql/15/bin'
const SUPERUSER_PASSWORD = 'superuser secret'
const APP_USER = 'tessera_app'
const APP_PASSWORD = 'app p@ss:w/rd%'
const SECRETS = [APP_PASSWORD, encodeURIComponent(APP_PASSWORD), SUPERUSER_PASSWORD]
const available = existsSync(join(PG_BIN, 'initdb'))
const prefix = `test:pg_auth:${crypto.randomUUID().slice(0, 8)}:`

let dir: string
let certificates: Certificates
let port: number
const servers: ServerProcess[] = []

/** Runs a PostgreSQL program as the `postgres` user when we are root (initdb refuses root). */
function asPostgres(command: string[]): string {
  const asRoot = process.getuid?.() === 0
  return runOrThrow(asRoot ? ['runuser', '-u', 'postgres', '--', ...command] : command, dir)
}

function databaseUrl(
  query: string,
  { host = 'localhost', user = APP_USER, password = APP_PASSWORD, database = 'postgres' } = {},
) {
  return `postgres://${user}:${encodeURIComponent(password)}@${host}:${port}/${database}${query}`
}

/** Runs `work` on a connection of the test server's superuser, over verified TLS, then closes it. */
async function asSuperuser<T>(work: (sql: ReturnType<typeof openPostgres>) => Promise<T>): Promise<T> {
  const admin = openPostgres(
    databaseUrl(`?sslmode=verify-full&sslrootcert=${certificates.ca}`, {
      user: 'postgres',
      password: SUPERUSER_PASSWORD,
    }),
    { max: 1, onnotice: () => {} },
  )
  try {
    return await work(admin)
  } finally {
    await admin.end({ timeout: 5 })
  }
}

beforeAll(async () => {
  if (!available) return
  dir = mkdtempSync(join(tmpdir(), 'tessera-pg-'))
  mkdirSync(join(dir, 'certs'))
  certificates = makeCertificates(join(dir, 'certs'), ['DNS:localhost'])
  // The server's key must belong to the server's user and be readable by it alone.
  copyFileSync(certificates.serverCert, join(dir, 'server.crt'))
  copyFileSync(certificates.serverKey, join(dir, 'server.key'))
  writeFileSync(join(dir, 'pwfile'), SUPERUSER_PASSWORD)
  if (process.getuid?.() === 0) runOrThrow(['chown', '-R', 'postgres:postgres', dir], dir)
  runOrThrow(['chmod', '600', join(dir, 'server.key')], dir)
  asPostgres([
    join(PG_BIN, 'initdb'),
    '-D',
    join(dir, 'data'),
    '-U',
    'postgres',
    '--auth=scram-sha-256',
    `--pwfile=${join(dir, 'pwfile')}`,
    '-E',
    'UTF8',
    '--no-sync',
  ])
  writeFileSync(
    join(dir, 'data', 'pg_hba.conf'),
    [
      'hostssl all all 127.0.0.1/32 scram-sha-256',
      'hostssl all all ::1/128 scram-sha-256',
      'hostnossl all all all reject',
      '',
    ].join('\n'),
  )
  port = freePort()
  const settings = [
    `-p ${port}`,
    `-k ${dir}`,
    '-c listen_addresses=localhost',
    '-c ssl=on',
    `-c ssl_cert_file=${join(dir, 'server.crt')}`,
    `-c ssl_key_file=${join(dir, 'server.key')}`,
    '-c fsync=off',
  ]
  asPostgres([
    join(PG_BIN, 'pg_ctl'),
    '-D',
    join(dir, 'data'),
    '-w',
    '-l',
    join(dir, 'log'),
    '-o',
    settings.join(' '),
    'start',
  ])
  await asSuperuser((admin) =>
    admin.unsafe(`create role ${APP_USER} login createdb password '${APP_PASSWORD.replaceAll("'", "''")}'`),
  )
}, 60_000)

afterAll(async () => {
  if (!available) return
  await Promise.all(servers.map((server) => server.stop()))
  asPostgres([join(PG_BIN, 'pg_ctl'), '-D', join(dir, 'data'), '-m', 'immediate', 'stop'])
  rmSync(dir, { recursive: true, force: true })
  const redis = new Redis(REDIS_URL)
  await deleteKeys(redis, prefix)
  await redis.quit()
})

/** Connects with a DATABASE_URL as the server would; whether the session is encrypted, or why it failed. */
async function tryConnect(url: string): Promise<{ ssl: boolean } | { error: string }> {
  const sql = openPostgres(url, { max: 1, connect_timeout: 5, onnotice: () => {} })
  try {
    const [row] = await sql<{ ssl: boolean }[]>`select ssl from pg_stat_ssl where pid = pg_backend_pid()`
    return { ssl: row?.ssl ?? false }
  } catch (error) {
    return { error: (error as Error).message }
  } finally {
    await sql.end({ timeout: 1 })
  }
}

describe.skipIf(!available)('PostgreSQL with passwords and TLS required', () => {
  test('each sslmode connects, or is refused, as libpq would', async () => {
    const ca = `&sslrootcert=${certificates.ca}`
    // No TLS: pg_hba.conf refuses the connection.
    expect(await tryConnect(databaseUrl(''))).toEqual({ error: expect.stringContaining('no encryption') })
    expect(await tryConnect(databaseUrl('?sslmode=disable'))).toEqual({
      error: expect.stringContaining('no encryption'),
    })
    // Encrypted, unverified: the certificate names localhost, not 127.0.0.1, and nobody checks.
    expect(await tryConnect(databaseUrl('?sslmode=prefer', { host: '127.0.0.1' }))).toEqual({ ssl: true })
    expect(await tryConnect(databaseUrl('?sslmode=require', { host: '127.0.0.1' }))).toEqual({ ssl: true })
    // verify-ca checks the chain only; verify-full the name too.
    expect(await tryConnect(databaseUrl(`?sslmode=verify-ca${ca}`, { host: '127.0.0.1' }))).toEqual({ ssl: true })
    expect(await tryConnect(databaseUrl(`?sslmode=verify-full${ca}`, { host: '127.0.0.1' }))).toEqual({
      error: expect.stringMatching(/altnames|does not match/i),
    })
    expect(await tryConnect(databaseUrl(`?sslmode=verify-full${ca}`))).toEqual({ ssl: true })
    // The system's CAs do not know the test's CA.
    expect(await tryConnect(databaseUrl('?sslmode=verify-full'))).toEqual({
      error: expect.stringMatching(/certificate/i),
    })
    // And the password is enforced.
    expect(await tryConnect(databaseUrl(`?sslmode=verify-full${ca}`, { password: 'wrong' }))).toEqual({
      error: expect.stringContaining('password authentication failed'),
    })
  }, 30_000)

  test("a server with a password and verify-full creates its database and serves the proof of concept's basics", async () => {
    const server = await startServer({
      DATABASE_URL: databaseUrl(`?sslmode=verify-full&sslrootcert=${certificates.ca}`, { database: 'tessera_tls' }),
      REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      LOG_LEVEL: 'debug',
    })
    servers.push(server)
    const password = 'dora-password'
    expect((await http(server.url, 'POST', '/user', { body: { username: 'dora', password } })).status).toBe(201)
    const cookie = await loginVia(server.url, 'dora', password)
    expect((await http(server.url, 'GET', '/user/me', { cookie })).status).toBe(200)
    for (const secret of SECRETS) expect(server.output()).not.toContain(secret)

    const sessions = await asSuperuser(
      (admin) => admin<{ ssl: boolean }[]>`
        select s.ssl from pg_stat_ssl s join pg_stat_activity a using (pid)
        where a.usename = ${APP_USER} and a.datname = 'tessera_tls'`,
    )
    expect(sessions.length).toBeGreaterThan(0)
    expect(sessions.every((session) => session.ssl)).toBe(true)
  }, 30_000)

  async function bootFailure(url: string): Promise<string> {
    const server = spawnServer({ DATABASE_URL: url, REDIS_URL, REDIS_KEY_PREFIX: prefix })
    servers.push(server)
    expect(await server.proc.exited).toBe(1)
    const lines = server.output().trim().split('\n')
    expect(lines).toHaveLength(1)
    const [line = ''] = lines
    expect(line).toStartWith('tessera: cannot prepare PostgreSQL at ')
    for (const secret of SECRETS) expect(line).not.toContain(secret)
    return line
  }

  test('a wrong password ends the boot with one line, without the password', async () => {
    const line = await bootFailure(
      databaseUrl(`?sslmode=verify-full&sslrootcert=${certificates.ca}`, { password: `${APP_PASSWORD}-wrong` }),
    )
    expect(line).toContain(`postgres://${APP_USER}:***@localhost:${port}/postgres?sslmode=verify-full`)
    expect(line).toContain('password authentication failed')
    expect(line).toContain('check the user and password in DATABASE_URL')
  }, 15_000)

  test('a host the certificate does not name ends the boot with one line about TLS', async () => {
    const line = await bootFailure(
      databaseUrl(`?sslmode=verify-full&sslrootcert=${certificates.ca}`, { host: '127.0.0.1' }),
    )
    expect(line).toContain('check sslmode, sslrootcert, sslcert and sslkey in DATABASE_URL')
  }, 15_000)
})
