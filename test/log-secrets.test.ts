// No secret in the logs (ASVS 16.2.5): a real server process logging at debug level goes through
// logins, failures, a password change, a fixation, logout, grants, and outages of Redis and of
// PostgreSQL (the paths that log the most, with error details); then every line it wrote is
// searched for each token, password and password hash it saw.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import Redis from 'ioredis'
import { ADMIN_PASSWORD, createTestDatabase, deleteKeys, REDIS_URL } from './helpers'
import { http, loginVia, type ServerProcess, startServer, type TcpProxy, tcpProxy, waitFor } from './processes'

const PASSWORD = 'first secret passphrase'
const NEW_PASSWORD = 'second secret passphrase'
const WRONG_PASSWORD = 'a wrong secret passphrase'

let server: ServerProcess
let redisProxy: TcpProxy
let postgresProxy: TcpProxy
let dropDatabase: () => Promise<void>
const prefix = `test:log_secrets:${crypto.randomUUID().slice(0, 8)}:`

beforeAll(async () => {
  const db = await createTestDatabase('log_secrets')
  dropDatabase = db.drop
  redisProxy = tcpProxy(Number(new URL(REDIS_URL).port || 6379))
  postgresProxy = tcpProxy(Number(new URL(db.url).port || 5432))
  const viaProxy = new URL(db.url)
  viaProxy.port = String(postgresProxy.port)
  const redisUrl = new URL(REDIS_URL)
  redisUrl.port = String(redisProxy.port)
  server = await startServer({
    DATABASE_URL: viaProxy.toString(),
    REDIS_URL: redisUrl.toString(),
    REDIS_KEY_PREFIX: prefix,
    LOG_LEVEL: 'debug',
  })
})

afterAll(async () => {
  await server?.stop()
  redisProxy?.close()
  postgresProxy?.close()
  const redis = new Redis(REDIS_URL)
  await deleteKeys(redis, prefix)
  await redis.quit()
  await dropDatabase?.()
})

const tokenOf = (cookie: string) => cookie.slice(cookie.indexOf('=') + 1)
const ready = () => waitFor(async () => (await fetch(`${server.url}/readyz`)).ok, 15_000, 'readyz after an outage')

describe('server logs', () => {
  test('hold no token, password or password hash, through normal use and outages', async () => {
    const secrets: string[] = [PASSWORD, NEW_PASSWORD, WRONG_PASSWORD, ADMIN_PASSWORD]
    expect((await http(server.url, 'POST', '/user', { body: { username: 'lena', password: PASSWORD } })).status).toBe(
      201,
    )
    const first = await loginVia(server.url, 'lena', PASSWORD)
    secrets.push(tokenOf(first))
    expect((await http(server.url, 'GET', '/user/me', { cookie: first })).status).toBe(200)
    const wrong = await http(server.url, 'POST', '/user/login', {
      body: { username: 'lena', password: WRONG_PASSWORD },
    })
    expect(wrong.status).toBe(401)

    const changed = await http(server.url, 'POST', '/user/password', {
      cookie: first,
      body: { currentPassword: PASSWORD, newPassword: NEW_PASSWORD },
    })
    expect(changed.status).toBe(200)
    const rotated = changed.headers.getSetCookie()[0]?.split(';')[0] ?? ''
    secrets.push(tokenOf(rotated))
    // A login sending the rotated cookie along ends it (fixation) and gets a new one.
    const again = await fetch(`${server.url}/user/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie: rotated },
      body: JSON.stringify({ username: 'lena', password: NEW_PASSWORD }),
    })
    expect(again.status).toBe(200)
    const third = again.headers.getSetCookie()[0]?.split(';')[0] ?? ''
    secrets.push(tokenOf(third))

    const admin = await loginVia(server.url, 'admin', ADMIN_PASSWORD)
    secrets.push(tokenOf(admin))
    const grant = { username: 'lena', permission: 'user:read' }
    expect((await http(server.url, 'POST', '/user/assign', { cookie: admin, body: grant })).status).toBe(200)

    // Redis cut off: a login, an authenticated read and a permission change all answer 503.
    redisProxy.cut()
    expect(
      (await http(server.url, 'POST', '/user/login', { body: { username: 'lena', password: NEW_PASSWORD } })).status,
    ).toBe(503)
    expect((await http(server.url, 'GET', '/user/me', { cookie: third })).status).toBe(503)
    expect((await http(server.url, 'POST', '/user/unassign', { cookie: admin, body: grant })).status).toBe(503)
    redisProxy.restore()
    await ready()

    // PostgreSQL cut off: a login.
    postgresProxy.cut()
    expect(
      (await http(server.url, 'POST', '/user/login', { body: { username: 'lena', password: NEW_PASSWORD } })).status,
    ).toBe(503)
    postgresProxy.restore()
    await ready()

    expect((await http(server.url, 'POST', '/user/logout', { cookie: third })).status).toBe(200)
    await server.stop()

    const output = server.output()
    // The outages were logged, so there is something to search (and LOG_LEVEL=debug was honoured).
    expect(output).toContain('unavailable')
    for (const secret of secrets) expect(output.includes(secret)).toBe(false)
    expect(output).not.toContain('$argon2')
  }, 60_000)
})
