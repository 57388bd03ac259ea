// Tessera's benchmark: `bun run bench [-- --quick] [--only=a,b] [--rounds=N] [--seconds=N]
// [--sessions=N] [--trials=N] [--boots=N] [--baseline=<git rev>]`. Method, targets and how to read the output:
// bench/README.md.

import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { connectRedis, createRedisClient } from '../src/store'
import { startRedisCluster, type TestCluster } from '../test/cluster'
import { deleteKeys, REDIS_URL } from '../test/services'
import { machineCpu, ROOT, stealShare } from './lib/measure'
import { BASE, renderReport } from './lib/report'
import { type BenchEnv, createBenchEnv, type Server, type Side, USER_PASSWORD } from './lib/servers'
import { type Boot, measureBoot } from './scenarios/boot'
import { argon2RawScenario, runRounds, type Scenario, wrkScenario } from './scenarios/http'
import { type CacheMemory, measureCacheMemory, measureRedisMemory, type RedisMemory } from './scenarios/memory'
import { measurePropagation, type Propagation } from './scenarios/propagation'

/**
 * The servers the scenarios run on. A Tessera server is the environment it runs with, over
 * production defaults, so that a variant (another Redis, another cache size) is one more entry
 * (`cluster`: on the bench's own 3-master Redis Cluster); a peer is its file in bench/peers.
 */
const SERVERS: Record<string, { env: Record<string, string>; cluster?: true } | { peer: string }> = {
  main: { env: {} },
  nocache: { env: { SESSION_CACHE_SIZE: '0' } },
  main_cluster: { env: {}, cluster: true },
  nocache_cluster: { env: { SESSION_CACHE_SIZE: '0' }, cluster: true },
  peer_express: { peer: 'express.mjs' },
  peer_fastify: { peer: 'fastify.mjs' },
}

/** The request wrk repeats in each HTTP scenario, on which server, with a session cookie or not. */
const HTTP_SCENARIOS = [
  { name: 'ping', server: 'main', path: '/healthz', session: false },
  { name: 'me_cached', server: 'main', path: '/user/me', session: true },
  { name: 'me_redis', server: 'nocache', path: '/user/me', session: true },
  { name: 'me_redis_cluster', server: 'nocache_cluster', path: '/user/me', session: true },
  { name: 'verify', server: 'main', path: '/auth/verify', session: true },
  { name: 'login', server: 'main', path: '/user/login', session: false },
  { name: 'peer_express', server: 'peer_express', path: '/me', session: true },
  { name: 'peer_fastify', server: 'peer_fastify', path: '/me', session: true },
]
const ALL = [
  ...HTTP_SCENARIOS.map((s) => s.name),
  'redis_memory',
  'cache_memory',
  'propagation',
  'propagation_cluster',
  'boot',
]
const isPeer = (server: string) => SERVERS[server] !== undefined && 'peer' in SERVERS[server]
const onCluster = (server: string) => {
  const spec = SERVERS[server]
  return spec !== undefined && 'env' in spec && spec.cluster === true
}

function parseOptions(argv: string[]) {
  const values = new Map(argv.map((arg) => [arg.replace(/^--/, '').split('=')[0] ?? '', arg.split('=')[1] ?? '']))
  const known = ['quick', 'only', 'rounds', 'seconds', 'sessions', 'trials', 'boots', 'baseline']
  const unknown = [...values.keys()].filter((name) => !known.includes(name))
  if (unknown.length > 0) throw new Error(`unknown option ${unknown.join(', ')} (known: --${known.join(', --')})`)
  const quick = values.has('quick')
  const int = (name: string, full: number, short: number) => {
    const n = Number(values.get(name) ?? (quick ? short : full))
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: expected a positive whole number`)
    return n
  }
  const only = values.get('only')?.split(',')
  const wrong = only?.filter((name) => !ALL.includes(name)) ?? []
  if (wrong.length > 0) throw new Error(`--only: unknown scenario ${wrong.join(', ')} (known: ${ALL.join(', ')})`)
  return {
    quick,
    only,
    wanted: (name: string) => only === undefined || only.includes(name),
    baseline: values.get('baseline') || undefined,
    rounds: int('rounds', 5, 2),
    seconds: int('seconds', 8, 2),
    loginSeconds: quick ? 2 : 6,
    warmupSeconds: quick ? 1 : 3,
    connections: 32,
    loginConcurrency: 4,
    loginUsers: 2000,
    sessions: int('sessions', 100_000, 20_000),
    trials: int('trials', 500, 200),
    boots: int('boots', 10, 3),
  }
}

const log = (line: string) => console.error(`bench: ${line}`)

async function main(options: ReturnType<typeof parseOptions>, env: BenchEnv): Promise<void> {
  const { wanted } = options
  const http = HTTP_SCENARIOS.filter((s) => wanted(s.name))
  if ((http.length > 0 || wanted('cache_memory')) && !Bun.which('wrk')) {
    throw new Error('wrk is not installed: apt-get update && apt-get install -y wrk (bash .ci/run does)')
  }
  const startedAt = new Date()
  const loadStart = loadavg()[0] ?? Number.NaN
  const cpuStart = machineCpu()

  const sides: Side[] = [env.current]
  // Only the current code runs on the cluster: the baseline may predate cluster support.
  const compared = (server: string) => !isPeer(server) && !onCluster(server)
  if (options.baseline && http.some((s) => compared(s.server))) {
    log(`checking out ${options.baseline} into a temporary worktree, with its dependencies`)
    sides.push(env.checkoutBaseline(options.baseline))
  }
  const users = await env.seedUsers(options.loginUsers)
  const user = users[0] as { id: number; username: string }
  const servers = new Map<string, Server>()
  let cluster: TestCluster | undefined
  const clusterEnv = async () => {
    if (!cluster) {
      log('starting a Redis Cluster of 3 masters with one replica each')
      cluster = await startRedisCluster({ masters: 3, replicas: 1 })
      env.onClose(async () => cluster?.stop())
    }
    return { REDIS_CLUSTER_NODES: cluster.seeds.join(',') }
  }
  const serverFor = async (name: string, side = env.current) => {
    const key = side === env.current ? name : `${name}${BASE}`
    const spec = SERVERS[name] ?? { env: {} }
    const extra = onCluster(name) ? await clusterEnv() : {}
    const server =
      servers.get(key) ??
      ('peer' in spec
        ? await env.startPeer(name, spec.peer)
        : await env.startTessera(key, { ...spec.env, ...extra }, side))
    if (!servers.has(key)) log(`${key} is up (pid ${server.proc.pid})`)
    servers.set(key, server)
    return server
  }

  const groups: Scenario[][] = []
  const bodies = join(tmpdir(), `tessera-bench-${env.id}-logins.txt`)
  const body = (u: { username: string }) => JSON.stringify({ username: u.username, password: USER_PASSWORD })
  if (wanted('login')) writeFileSync(bodies, `${users.map(body).join('\n')}\n`)
  for (const s of http) {
    const group: Scenario[] = []
    for (const side of compared(s.server) ? sides : [env.current]) {
      const server = await serverFor(s.server, side)
      const url = `${server.url}${s.path}`
      const cookie = s.session ? [`Cookie: ${await server.login(user.username)}`] : []
      const wrk =
        s.name === 'login'
          ? { url, connections: options.loginConcurrency, script: 'login.lua' as const, scriptArgs: [bodies] }
          : { url, connections: options.connections, headers: cookie }
      group.push(wrkScenario(`${s.name}${side === env.current ? '' : BASE}`, server, wrk))
    }
    groups.push(group)
  }
  if (wanted('login')) groups.push([argon2RawScenario(options.loginConcurrency)])
  const rounds = await runRounds(groups, options, log)
  rmSync(bodies, { force: true })

  let propagation: Propagation | undefined
  // Propagation's second instance starts only after the rounds: an idle instance's tailer wakes
  // for every login's event, which the login rounds would pay for while measuring nothing of it.
  if (wanted('propagation')) {
    const [a, b] = [await serverFor('main'), await env.startTessera('b')]
    log(`propagation: ${options.trials} trials, logout through ${a.name}, polling ${b.name}`)
    propagation = await measurePropagation(env.contextFor({}), a, b, user, options.trials)
  }
  let propagationCluster: Propagation | undefined
  if (wanted('propagation_cluster')) {
    const clustered = await clusterEnv()
    const [a, b] = [await serverFor('main_cluster'), await env.startTessera('b_cluster', clustered)]
    const client = createRedisClient({ url: REDIS_URL, clusterNodes: clustered.REDIS_CLUSTER_NODES.split(',') })
    await connectRedis(client)
    log(`propagation on the cluster: ${options.trials} trials, logout through ${a.name}, polling ${b.name}`)
    propagationCluster = await measurePropagation(env.contextFor(clustered, client), a, b, user, options.trials)
    client.disconnect()
  }
  await env.stopServers()

  let boot: Boot | undefined
  if (wanted('boot')) {
    log(`boot: ${options.boots} starts each of bun src/index.ts and the compiled binary, in turn`)
    boot = await measureBoot(env, options.boots)
  }

  let redisMemory: RedisMemory | undefined
  let cacheMemory: CacheMemory | undefined
  if (wanted('redis_memory') || wanted('cache_memory')) {
    // Without the other scenarios' keys, Redis's key tables cannot cross a doubling during the
    // measurement, depending on how many logins the login scenario happened to make.
    await deleteKeys(env.redis, env.prefix)
    log(`memory: creating ${options.sessions} sessions through createSession`)
    const prefix = { REDIS_KEY_PREFIX: env.shortPrefix }
    const measured = await measureRedisMemory(env.contextFor(prefix), env.redis, options.sessions)
    if (wanted('redis_memory')) redisMemory = measured.result
    if (wanted('cache_memory')) {
      const cacheSize = String(Math.max(100_000, options.sessions * 2))
      const on = await env.startTessera('cache_on', { ...prefix, SESSION_CACHE_SIZE: cacheSize })
      const off = await env.startTessera('cache_off', { ...prefix, SESSION_CACHE_SIZE: '0' })
      log(`cache_memory: visiting ${options.sessions} cookies once each, cache on then off`)
      cacheMemory = await measureCacheMemory(on, off, measured.tokens, options.connections)
      await env.stopServers()
    }
    await deleteKeys(env.redis, env.shortPrefix)
  }

  const node = `${Bun.spawnSync([process.env.BENCH_NODE ?? 'node', '--version']).stdout}`.trim()
  const { markdown, json } = renderReport({
    quick: options.quick,
    only: options.only !== undefined,
    settings: options,
    machine: {
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      bun: Bun.version,
      node: node || 'missing',
      redis: /^redis_version:(\S+)/m.exec(await env.redis.info('server'))?.[1] ?? 'unknown',
    },
    startedAt,
    finishedAt: new Date(),
    load: [loadStart, loadavg()[0] ?? Number.NaN],
    steal: stealShare(cpuStart),
    http: rounds,
    baseline: sides[1] && {
      label: sides[1].label,
      scenarios: http.filter((s) => compared(s.server)).map((s) => s.name),
    },
    redisMemory,
    cacheMemory,
    propagation,
    propagationCluster,
    boot,
  })
  const results = join(ROOT, 'bench', 'results')
  mkdirSync(results, { recursive: true })
  const stamp = startedAt.toISOString().replaceAll(':', '-')
  writeFileSync(join(results, `${stamp}.json`), `${JSON.stringify(json, null, 2)}\n`)
  writeFileSync(join(results, 'latest.md'), `${markdown}\n`)
  console.log(markdown)
  log(`saved bench/results/latest.md and bench/results/${stamp}.json (every figure)`)
}

let options: ReturnType<typeof parseOptions>
try {
  options = parseOptions(process.argv.slice(2))
} catch (error) {
  log((error as Error).message)
  process.exit(2)
}
const env = await createBenchEnv()
// Cleanup runs once, whichever way the run ends: servers (by pid), then keys, database, worktree.
let cleaning: Promise<void> | undefined
const cleanup = () => {
  cleaning ??= env.close()
  return cleaning
}
for (const [signal, code] of Object.entries({ SIGINT: 130, SIGTERM: 143 })) {
  process.on(signal, () => {
    log(`${signal}: stopping servers and removing bench data`)
    void cleanup().finally(() => process.exit(code))
  })
}
process.on('exit', () => env.killNow())
try {
  await main(options, env)
  await cleanup()
  process.exit(0)
} catch (error) {
  log(String((error as Error).stack ?? error))
  await cleanup()
  process.exit(1)
}
