// Adding a master to a live cluster and moving slots to it (`redis-cli --cluster add-node` and
// `rebalance`) while two instances serve authenticated traffic: no answer other than the right one
// (or, at worst, a 503), sessions keep working, and the new master ends up holding sessions.

import { afterAll, beforeAll, expect, test } from 'bun:test'
import { startRedisCluster, type TestCluster } from './cluster'
import { ADMIN_PASSWORD, createTestDatabase } from './helpers'
import { http, loginVia, type ServerProcess, startServer } from './processes'

let cluster: TestCluster
let dropDatabase: () => Promise<void>
let servers: ServerProcess[] = []

beforeAll(async () => {
  // Three masters without replicas; the fourth joins during the test.
  cluster = await startRedisCluster({ masters: 3, replicas: 0, spare: 1 })
  const db = await createTestDatabase('cluster_reshard')
  dropDatabase = db.drop
  const vars = { DATABASE_URL: db.url, REDIS_CLUSTER_NODES: cluster.seeds.join(','), REDIS_KEY_PREFIX: 'tessera:' }
  servers = [await startServer(vars), await startServer(vars)]
}, 60_000)

afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()))
  await dropDatabase?.()
  await cluster?.stop()
})

async function redisCli(...args: string[]): Promise<string> {
  const proc = Bun.spawn(['redis-cli', ...args], { stdout: 'pipe', stderr: 'pipe' })
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ])
  if (code !== 0) throw new Error(`redis-cli ${args.join(' ')} failed (${code}): ${out}${err}`)
  return out
}

test('a master added and slots moved to it under traffic: every answer right (or a 503), no restart', async () => {
  const [a, b] = servers as [ServerProcess, ServerProcess]
  const names = Array.from({ length: 24 }, (_, i) => `mover${i}`)
  for (const name of names) {
    expect(
      (await http(a.url, 'POST', '/user', { body: { username: name, password: `${name}-password` } })).status,
    ).toBe(201)
  }
  const cookies = await Promise.all(names.map((name, i) => loginVia(i % 2 ? a.url : b.url, name, `${name}-password`)))
  const ended = await loginVia(a.url, 'admin', ADMIN_PASSWORD)
  expect((await http(b.url, 'POST', '/user/logout', { cookie: ended })).status).toBe(200)

  const statuses = new Map<string, number>()
  const count = (key: string) => statuses.set(key, (statuses.get(key) ?? 0) + 1)
  let running = true
  const traffic = Promise.all(
    servers.map(async (server) => {
      for (let i = 0; running; i++) {
        const live = cookies[i % cookies.length] as string
        const liveStatus = (await http(server.url, 'GET', '/user/me', { cookie: live })).status
        count(`live ${liveStatus}`)
        const endedStatus = (await http(server.url, 'GET', '/user/me', { cookie: ended })).status
        count(`ended ${endedStatus}`)
      }
    }),
  )

  const spare = cluster.spares[0]
  if (!spare) throw new Error('no spare node')
  const seed = cluster.seeds[0] as string
  await redisCli('--cluster', 'add-node', spare.address, seed)
  await cluster.joined(spare.port)
  const started = performance.now()
  await redisCli('--cluster', 'rebalance', seed, '--cluster-use-empty-masters', '--cluster-yes')
  const movedMs = performance.now() - started
  await cluster.healthy()
  // A new session made after the move, and every old one, through both instances.
  for (const server of servers) {
    for (const cookie of cookies) expect((await http(server.url, 'GET', '/user/me', { cookie })).status).toBe(200)
  }
  running = false
  await traffic

  const topology = await cluster.topology()
  const newcomer = topology.find((m) => m.master === spare.port)
  expect(newcomer?.slots.length).toBeGreaterThan(0)
  const node = cluster.connect(spare.port)
  let sessionKeys = 0
  let cursor = '0'
  do {
    const [next, keys] = await node.scan(cursor, 'MATCH', 'tessera:{*}:s:*', 'COUNT', 1000)
    cursor = next
    sessionKeys += keys.length
  } while (cursor !== '0')
  expect(sessionKeys).toBeGreaterThan(0)

  const seen = Object.fromEntries(statuses)
  console.log(`reshard: slots moved in ${movedMs.toFixed(0)} ms under traffic; answers ${JSON.stringify(seen)}`)
  // A live session is 200 (or at worst 503), an ended one 401 (or 503): never a wrong answer.
  expect(Object.keys(seen).filter((key) => !['live 200', 'live 503', 'ended 401', 'ended 503'].includes(key))).toEqual(
    [],
  )
  expect(servers.every((server) => server.proc.exitCode === null)).toBe(true)
}, 180_000)
