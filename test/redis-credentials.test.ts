// Redis credentials and TLS with real processes, against a redis-server the test owns: the default
// user's password (requirepass), an ACL user held to the key prefix and denied @dangerous commands,
// and rediss:// with the test's own CA and a client certificate. Right credentials serve the proof
// of concept's basics; wrong ones end the boot with one line that never holds a password.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Redis from 'ioredis'
import { type Certificates, makeCertificates } from './certificates'
import { createTestDatabase, freePort } from './helpers'
import {
  http,
  loginVia,
  type RedisProcess,
  redisServer,
  type ServerProcess,
  spawnServer,
  startServer,
} from './processes'

// Characters a URL must escape, so the tests also cover decoding.
const DEFAULT_PASSWORD = 'default p@ss:w/rd%'
const APP_USER = 'tessera'
const APP_PASSWORD = 'app secret/with:odd@chars'
const SECRETS = [DEFAULT_PASSWORD, APP_PASSWORD, encodeURIComponent(DEFAULT_PASSWORD), encodeURIComponent(APP_PASSWORD)]

const prefix = `test:redis_auth:${crypto.randomUUID().slice(0, 8)}:`
let dir: string
let certificates: Certificates
let redis: RedisProcess
let tlsPort: number
let databaseUrl: string
let dropDatabase: () => Promise<void>
const servers: ServerProcess[] = []

const redisUrl = (user: string, password: string, { tls = false } = {}) =>
  `${tls ? 'rediss' : 'redis'}://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${tls ? tlsPort : redis.port}/0`

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-redis-tls-'))
  certificates = makeCertificates(dir, ['IP:127.0.0.1', 'DNS:localhost'])
  tlsPort = freePort()
  redis = redisServer(freePort(), {
    args: [
      '--requirepass',
      DEFAULT_PASSWORD,
      // Least privilege: the deployment's keys and channels only, nothing from @dangerous (KEYS,
      // FLUSHALL, CONFIG, DEBUG, ...).
      '--user',
      APP_USER,
      'on',
      `>${APP_PASSWORD}`,
      `~${prefix}*`,
      '&*',
      '+@all',
      '-@dangerous',
      '--tls-port',
      String(tlsPort),
      '--tls-cert-file',
      certificates.serverCert,
      '--tls-key-file',
      certificates.serverKey,
      '--tls-ca-cert-file',
      certificates.ca,
      // Redis's own default: a TLS client must show a certificate the CA signed.
      '--tls-auth-clients',
      'yes',
    ],
  })
  await redis.start()
  const db = await createTestDatabase('redis_auth')
  databaseUrl = db.url
  dropDatabase = db.drop
})

afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()))
  await redis?.destroy()
  await dropDatabase?.()
  rmSync(dir, { recursive: true, force: true })
})

const vars = (extra: Record<string, string>) => ({ DATABASE_URL: databaseUrl, REDIS_KEY_PREFIX: prefix, ...extra })

async function serve(extra: Record<string, string>): Promise<ServerProcess> {
  const server = await startServer(vars(extra))
  servers.push(server)
  return server
}

/** Register, log in, read /user/me, log out: the proof of concept's basics. */
async function provePocBasics(server: ServerProcess) {
  const username = `u${crypto.randomUUID().slice(0, 8)}`
  const password = `${username}-password`
  expect((await http(server.url, 'POST', '/user', { body: { username, password } })).status).toBe(201)
  const cookie = await loginVia(server.url, username, password)
  expect((await http(server.url, 'GET', '/user/me', { cookie })).status).toBe(200)
  expect((await http(server.url, 'POST', '/user/logout', { cookie })).status).toBeLessThan(300)
  expect((await http(server.url, 'GET', '/user/me', { cookie })).status).toBe(401)
}

function expectNoSecret(output: string) {
  for (const secret of SECRETS) expect(output).not.toContain(secret)
}

/** Boots with these variables, expecting an exit with 1 and one line; returns the line. */
async function bootFailure(extra: Record<string, string>): Promise<string> {
  const server = spawnServer(vars(extra))
  servers.push(server)
  expect(await server.proc.exited).toBe(1)
  const lines = server.output().trim().split('\n')
  expect(lines).toHaveLength(1)
  const [line = ''] = lines
  expect(line).toStartWith('tessera: cannot reach Redis at ')
  expectNoSecret(line)
  return line
}

describe('Redis credentials', () => {
  test("the default user's password (requirepass), escaped in the URL", async () => {
    const server = await serve({ REDIS_URL: redisUrl('', DEFAULT_PASSWORD), LOG_LEVEL: 'debug' })
    await provePocBasics(server)
    expectNoSecret(server.output())
  }, 30_000)

  test('an ACL user held to the key prefix, without @dangerous commands', async () => {
    const server = await serve({ REDIS_URL: redisUrl(APP_USER, APP_PASSWORD), LOG_LEVEL: 'debug' })
    await provePocBasics(server)
    expectNoSecret(server.output())
    const admin = new Redis(redis.port, { password: DEFAULT_PASSWORD })
    try {
      expect(String(await admin.client('LIST'))).toContain(`user=${APP_USER}`)
    } finally {
      admin.disconnect()
    }
  }, 30_000)

  test('a wrong password ends the boot with one line naming Redis, never the password', async () => {
    const line = await bootFailure({ REDIS_URL: redisUrl(APP_USER, `${APP_PASSWORD}-wrong`) })
    expect(line).toContain(`redis://${APP_USER}:***@127.0.0.1:${redis.port}/0`)
    expect(line).toContain('WRONGPASS')
    expect(line).toContain('check the user and password')
    expect(line).not.toContain('wrong')
  }, 15_000)

  test('no password at all ends the boot with one line too', async () => {
    const line = await bootFailure({ REDIS_URL: `redis://127.0.0.1:${redis.port}/0` })
    expect(line).toContain('NOAUTH')
  }, 15_000)
})

describe('Redis over TLS (rediss://)', () => {
  const tlsVars = () => ({
    REDIS_URL: redisUrl(APP_USER, APP_PASSWORD, { tls: true }),
    REDIS_TLS_CA_FILE: certificates.ca,
    REDIS_TLS_CERT_FILE: certificates.clientCert,
    REDIS_TLS_KEY_FILE: certificates.clientKey,
  })

  test('with the CA and a client certificate: serves (the port speaks TLS only)', async () => {
    const server = await serve({ ...tlsVars(), LOG_LEVEL: 'debug' })
    await provePocBasics(server)
    expectNoSecret(server.output())
  }, 30_000)

  test("without the CA the server's certificate does not verify: one line", async () => {
    const { REDIS_TLS_CA_FILE: _, ...withoutCa } = tlsVars()
    const line = await bootFailure(withoutCa)
    expect(line).toContain(`rediss://${APP_USER}:***@127.0.0.1:${tlsPort}/0`)
    expect(line).toMatch(/certificate/i)
    expect(line).toContain('REDIS_TLS_CA_FILE')
  }, 15_000)

  test('without a client certificate, where Redis asks for one: one line', async () => {
    const { REDIS_TLS_CERT_FILE: _c, REDIS_TLS_KEY_FILE: _k, ...withoutClientCertificate } = tlsVars()
    await bootFailure(withoutClientCertificate)
  }, 15_000)

  test('an unreadable CA file ends the boot with one line naming the variable', async () => {
    const server = spawnServer(vars({ ...tlsVars(), REDIS_TLS_CA_FILE: join(dir, 'missing.crt') }))
    servers.push(server)
    expect(await server.proc.exited).toBe(1)
    expect(server.output().trim().split('\n')).toEqual([expect.stringContaining('cannot read REDIS_TLS_CA_FILE')])
  }, 15_000)
})
