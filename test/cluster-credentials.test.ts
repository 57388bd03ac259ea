// A Redis Cluster with a password and TLS only (test/cluster.ts: three masters of the test's own):
// the server boots from rediss:// seed nodes and the test's CA, serves the proof of concept's
// basics, and reads the event streams over TLS; a wrong password or a missing CA ends the boot
// with one line that holds no password.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Certificates, makeCertificates } from './certificates'
import { startRedisCluster, type TestCluster } from './cluster'
import { createTestDatabase } from './helpers'
import { http, loginVia, type ServerProcess, spawnServer, startServer } from './processes'

const PASSWORD = 'cluster p@ss:w/rd%'
let dir: string
let certificates: Certificates
let cluster: TestCluster
let databaseUrl: string
let dropDatabase: () => Promise<void>
const servers: ServerProcess[] = []

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-cluster-tls-'))
  certificates = makeCertificates(dir, ['IP:127.0.0.1'])
  cluster = await startRedisCluster({ masters: 3, replicas: 0, password: PASSWORD, tls: certificates })
  const db = await createTestDatabase('cluster_auth')
  databaseUrl = db.url
  dropDatabase = db.drop
}, 60_000)

afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()))
  await cluster?.stop()
  await dropDatabase?.()
  rmSync(dir, { recursive: true, force: true })
})

/** The seed nodes, the first as a URL carrying the password (which the others share). */
const seeds = (password: string) =>
  [`rediss://:${encodeURIComponent(password)}@${cluster.seeds[0]}`, ...cluster.seeds.slice(1)].join(',')

const vars = (extra: Record<string, string>) => ({
  DATABASE_URL: databaseUrl,
  REDIS_KEY_PREFIX: 'tessera:',
  REDIS_CLUSTER_NODES: seeds(PASSWORD),
  REDIS_TLS_CA_FILE: certificates.ca,
  ...extra,
})

function expectNoSecret(output: string) {
  for (const secret of [PASSWORD, encodeURIComponent(PASSWORD)]) expect(output).not.toContain(secret)
}

async function bootFailure(extra: Record<string, string>): Promise<string> {
  const server = spawnServer(vars(extra))
  servers.push(server)
  expect(await server.proc.exited).toBe(1)
  const lines = server.output().trim().split('\n')
  expect(lines).toHaveLength(1)
  expectNoSecret(lines[0] ?? '')
  return lines[0] ?? ''
}

describe('a Redis Cluster with a password and TLS', () => {
  test("serves the proof of concept's basics, its event streams read over TLS", async () => {
    const server = await startServer(vars({ LOG_LEVEL: 'debug' }))
    servers.push(server)
    const password = 'carla-password'
    expect((await http(server.url, 'POST', '/user', { body: { username: 'carla', password } })).status).toBe(201)
    const cookie = await loginVia(server.url, 'carla', password)
    expect((await http(server.url, 'GET', '/user/me', { cookie })).status).toBe(200)
    expect((await http(server.url, 'POST', '/user/logout', { cookie })).status).toBeLessThan(300)
    expect((await http(server.url, 'GET', '/user/me', { cookie })).status).toBe(401)
    // The tailer's blocking readers (one per partition, to each slot's master) connected too.
    await Bun.sleep(500)
    expect(server.output()).not.toContain('"level":"warn"')
    expectNoSecret(server.output())
  }, 30_000)

  test('a wrong password ends the boot with one line', async () => {
    const line = await bootFailure({ REDIS_CLUSTER_NODES: seeds(`${PASSWORD}-wrong`) })
    expect(line).toContain(`rediss://:***@${cluster.seeds[0]}`)
    expect(line).toContain('WRONGPASS')
    expect(line).not.toContain('wrong')
  }, 15_000)

  test('without the CA: one line that points at the TLS settings', async () => {
    const line = await bootFailure({ REDIS_TLS_CA_FILE: '' })
    expect(line).toContain('REDIS_TLS_CA_FILE')
  }, 15_000)
})
