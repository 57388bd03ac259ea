// Tessera's benchmark suite (issue 5): `bun run bench [-- --quick] [--only=a,b] [--rounds=N] [--seconds=N]`.
// Starts its own servers with production settings, drives them with wrk from a separate process,
// alternates the scenarios in rounds so that they share the machine's noise, and prints a table
// followed by one JSON line with every figure.

import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { type BenchEnv, createBenchEnv, deleteKeys, freePort, USER_PASSWORD } from './lib/env'
import { killAllChildrenNow, machineCpu, stealShare, stopAllChildren } from './lib/processes'
import { type Report, renderReport } from './lib/report'
import {
  ensurePeerDependencies,
  loginPeer,
  loginTessera,
  ROOT,
  type RunningServer,
  startPeer,
  startTessera,
} from './lib/servers'
import { WRK_MISSING, wrkPath } from './lib/wrk'
import { argon2RawScenario, type RoundSample, type Scenario, wrkScenario } from './scenarios/http'
import { measureCacheMemory, measureRedisMemory } from './scenarios/memory'
import { measurePropagation } from './scenarios/propagation'

const HTTP_SCENARIOS = ['ping', 'me_cached', 'me_redis', 'verify', 'peer_express', 'peer_fastify', 'login'] as const
const OTHER_SCENARIOS = ['redis_memory', 'cache_memory', 'propagation'] as const
const ALL = [...HTTP_SCENARIOS, ...OTHER_SCENARIOS] as readonly string[]

export interface Options {
  quick: boolean
  only: Set<string> | null
  rounds: number
  seconds: number
  warmupSeconds: number
  loginSeconds: number
  connections: number
  loginConcurrency: number
  loginUsers: number
  memorySessions: number
  propagationTrials: number
}

function parseOptions(argv: string[]): Options {
  const flag = (name: string) => argv.find((a) => a === `--${name}` || a.startsWith(`--${name}=`))
  const value = (name: string) => flag(name)?.split('=')[1]
  const quick = flag('quick') !== undefined
  const only = value('only')
  const unknown = only?.split(',').filter((name) => !ALL.includes(name)) ?? []
  if (unknown.length > 0) throw new Error(`--only: unknown scenario ${unknown.join(', ')} (known: ${ALL.join(', ')})`)
  const int = (name: string, fallback: number) => {
    const raw = value(name)
    if (raw === undefined) return fallback
    const n = Number(raw)
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: expected a positive whole number`)
    return n
  }
  return {
    quick,
    only: only ? new Set(only.split(',')) : null,
    rounds: int('rounds', quick ? 2 : 5),
    seconds: int('seconds', quick ? 2 : 8),
    warmupSeconds: quick ? 1 : 3,
    loginSeconds: int('login-seconds', quick ? 2 : 6),
    connections: int('connections', 32),
    loginConcurrency: int('login-concurrency', 4),
    loginUsers: 2000,
    memorySessions: int('sessions', quick ? 20_000 : 100_000),
    propagationTrials: int('trials', quick ? 200 : 500),
  }
}

const log = (line: string) => console.error(`bench: ${line}`)

interface HttpOutcome {
  samples: Map<string, RoundSample[]>
  errors: Map<string, string>
  descriptions: Map<string, string>
  notApplicable: Map<string, string>
}

/** Runs every scenario once per round, rotating the starting point so that no one always goes first. */
async function runRounds(scenarios: Scenario[], options: Options, outcome: HttpOutcome): Promise<void> {
  const secondsFor = (s: Scenario) =>
    s.name === 'login' || s.name === 'argon2_raw' ? options.loginSeconds : options.seconds
  for (const scenario of scenarios) {
    outcome.samples.set(scenario.name, [])
    outcome.descriptions.set(scenario.name, scenario.description)
  }
  log(`warm-up: ${scenarios.map((s) => s.name).join(', ')} (${options.warmupSeconds}s each)`)
  for (const scenario of scenarios) {
    try {
      await scenario.run(options.warmupSeconds)
    } catch (error) {
      outcome.errors.set(scenario.name, (error as Error).message)
    }
  }
  for (let round = 0; round < options.rounds; round++) {
    const order = scenarios.map((_, i) => scenarios[(i + round) % scenarios.length] as Scenario)
    const line: string[] = []
    for (const scenario of order) {
      if (outcome.errors.has(scenario.name)) continue
      try {
        const sample = await scenario.run(secondsFor(scenario))
        outcome.samples.get(scenario.name)?.push(sample)
        line.push(`${scenario.name} ${Math.round(sample.rps)}/s`)
      } catch (error) {
        outcome.errors.set(scenario.name, (error as Error).message)
        line.push(`${scenario.name} failed`)
      }
      await Bun.sleep(250)
    }
    log(`round ${round + 1}/${options.rounds}: ${line.join(', ')}`)
  }
}

async function main(options: Options, state: { env?: BenchEnv }): Promise<void> {
  const wanted = (name: string) => options.only === null || options.only.has(name)
  const wantedHttp = HTTP_SCENARIOS.filter(wanted)
  if (wantedHttp.length > 0 || wanted('cache_memory')) {
    if (!wrkPath()) {
      console.error(WRK_MISSING)
      process.exit(2)
    }
  }
  const wantPeers = wanted('peer_express') || wanted('peer_fastify')
  if (wantPeers) await ensurePeerDependencies()

  const startedAt = new Date()
  const loadStart = loadavg()
  const cpuStart = machineCpu()
  log(`mode ${options.quick ? 'quick' : 'full'}; preparing database and users`)
  const env = await createBenchEnv()
  state.env = env
  const users = await env.seedUsers(options.loginUsers)
  const firstUser = users[0] as { id: number; username: string }
  const ports = new Set<number>()
  const port = () => freePort(ports)

  // Servers for the HTTP scenarios, started together and idle unless measured. Propagation's second
  // instance is started only after the rounds: an idle instance tails the event stream, and each
  // event wakes it from sleep (about 0.3 ms of CPU on this kind of machine, mostly cold caches and
  // the scheduler, measured with a bare ioredis XREAD reader too), which would be charged to the
  // login scenario's 2 cores while measuring nothing of it.
  const needMain = wantedHttp.some((n) => ['ping', 'me_cached', 'verify', 'login'].includes(n)) || wanted('propagation')
  const starts: Record<string, Promise<RunningServer> | undefined> = {
    main: needMain ? startTessera(env, 'main', await port()) : undefined,
    noCache: wanted('me_redis') ? startTessera(env, 'nocache', await port(), { SESSION_CACHE_SIZE: '0' }) : undefined,
    express: wanted('peer_express') ? startPeer(env, 'peer_express', 'express.mjs', await port()) : undefined,
    fastify: wanted('peer_fastify') ? startPeer(env, 'peer_fastify', 'fastify.mjs', await port()) : undefined,
  }
  await Promise.allSettled(Object.values(starts))
  const servers: Record<string, RunningServer | undefined> = {}
  for (const [name, start] of Object.entries(starts)) servers[name] = start ? await start : undefined
  log(
    `servers up: ${Object.values(servers)
      .filter(Boolean)
      .map((s) => `${s?.name} (pid ${s?.pid})`)
      .join(', ')}`,
  )

  const outcome: HttpOutcome = {
    samples: new Map(),
    errors: new Map(),
    descriptions: new Map(),
    notApplicable: new Map(),
  }
  const scenarios: Scenario[] = []
  const http = (name: string, description: string, server: RunningServer | undefined, path: string, cookie = '') => {
    if (!server) return
    const headers = cookie ? [`Cookie: ${cookie}`] : []
    scenarios.push(
      wrkScenario(name, description, server, env, {
        url: `${server.url}${path}`,
        connections: options.connections,
        headers,
      }),
    )
  }
  const tesseraCookie = servers.main ?? servers.noCache
  const cookie = tesseraCookie ? await loginTessera(tesseraCookie, firstUser.username, USER_PASSWORD) : ''
  if (wanted('ping')) http('ping', 'GET /healthz: no session, the ceiling', servers.main, '/healthz')
  if (wanted('me_cached'))
    http('me_cached', 'GET /user/me with a valid cookie, local session cache on', servers.main, '/user/me', cookie)
  if (wanted('me_redis'))
    http('me_redis', 'GET /user/me, SESSION_CACHE_SIZE=0: one Redis read', servers.noCache, '/user/me', cookie)
  if (wanted('verify') && servers.main) {
    const probe = await fetch(`${servers.main.url}/auth/verify`, { headers: { cookie } })
    await probe.arrayBuffer()
    if (probe.status === 200) {
      http('verify', 'GET /auth/verify (forward auth) with a valid cookie', servers.main, '/auth/verify', cookie)
    } else {
      outcome.notApplicable.set('verify', `GET /auth/verify answered ${probe.status} with a valid cookie`)
    }
  }
  const peers = [
    ['peer_express', 'Express 5 + express-session + connect-redis (Node), GET /me', servers.express],
    ['peer_fastify', 'Fastify 5 + @fastify/session + connect-redis (Node), GET /me', servers.fastify],
  ] as const
  for (const [name, description, server] of peers) {
    if (server) http(name, description, server, '/me', await loginPeer(server))
  }
  let bodiesDir: string | undefined
  if (wanted('login') && servers.main) {
    bodiesDir = join(ROOT, 'bench', 'results', `.login-${env.id}`)
    mkdirSync(bodiesDir, { recursive: true })
    const bodiesFile = join(bodiesDir, 'bodies.txt')
    writeFileSync(
      bodiesFile,
      `${users.map((u) => JSON.stringify({ username: u.username, password: USER_PASSWORD })).join('\n')}\n`,
    )
    scenarios.push(
      wrkScenario('login', 'POST /user/login, correct password, users in rotation', servers.main, env, {
        url: `${servers.main.url}/user/login`,
        connections: options.loginConcurrency,
        script: 'login.lua',
        scriptArgs: [bodiesFile],
      }),
    )
    scenarios.push(argon2RawScenario(options.loginConcurrency))
  }

  if (scenarios.length > 0) await runRounds(scenarios, options, outcome)
  if (bodiesDir) rmSync(bodiesDir, { recursive: true, force: true })

  let propagation: Awaited<ReturnType<typeof measurePropagation>> | undefined
  if (wanted('propagation') && servers.main) {
    servers.b = await startTessera(env, 'b', await port())
    log(`propagation: ${options.propagationTrials} trials, logout through A, poll B (pid ${servers.b.pid})`)
    propagation = await measurePropagation(
      env.contextFor({}),
      servers.main,
      servers.b,
      firstUser,
      options.propagationTrials,
    )
  }
  await Promise.allSettled(Object.values(servers).map((s) => s?.stop()))

  let redisMemory: Awaited<ReturnType<typeof measureRedisMemory>>['result'] | undefined
  let cacheMemory: Awaited<ReturnType<typeof measureCacheMemory>> | undefined
  if (wanted('redis_memory') || wanted('cache_memory')) {
    // The HTTP scenarios' sessions are not part of this measurement: with them still in Redis, its
    // key tables can cross a doubling boundary during the measurement (about 40 B per session at
    // 100,000), depending on how many logins the login scenario happened to make.
    await deleteKeys(env.redis, env.prefix)
    log(`memory: creating ${options.memorySessions} sessions through createSession`)
    const { result, fixture } = await measureRedisMemory(env, options.memorySessions)
    try {
      if (wanted('redis_memory')) redisMemory = result
      if (wanted('cache_memory')) {
        const cacheSize = String(Math.max(100_000, options.memorySessions * 2))
        const [cacheOn, cacheOff] = await Promise.all([
          startTessera(env, 'cache_on', await port(), {
            REDIS_KEY_PREFIX: fixture.prefix,
            SESSION_CACHE_SIZE: cacheSize,
          }),
          startTessera(env, 'cache_off', await port(), { REDIS_KEY_PREFIX: fixture.prefix, SESSION_CACHE_SIZE: '0' }),
        ])
        log(`cache_memory: visiting ${options.memorySessions} cookies once each, cache on then off`)
        try {
          cacheMemory = await measureCacheMemory(fixture, { cacheOn, cacheOff }, options.connections)
        } finally {
          await Promise.allSettled([cacheOn.stop(), cacheOff.stop()])
        }
      }
    } finally {
      await fixture.dispose()
    }
  }

  // The run ends here: the version probes below start processes of their own, outside it.
  const finishedAt = new Date()
  const loadEnd = loadavg()
  const steal = stealShare(cpuStart, machineCpu())
  const report: Report = {
    options,
    versions: await versions(env),
    startedAt,
    finishedAt,
    loadStart,
    loadEnd,
    stealShare: steal,
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    http: outcome,
    redisMemory,
    cacheMemory,
    propagation,
  }
  const { text, json } = renderReport(report)
  const resultsDir = join(ROOT, 'bench', 'results')
  mkdirSync(resultsDir, { recursive: true })
  writeFileSync(join(resultsDir, `${startedAt.toISOString().replaceAll(':', '-')}.json`), `${json}\n`)
  console.log(text)
  console.log(json)
}

async function versions(env: BenchEnv): Promise<Record<string, string>> {
  const firstLine = (cmd: string[]) => {
    try {
      const out = Bun.spawnSync(cmd, { stdout: 'pipe', stderr: 'pipe' })
      return `${out.stdout.toString()}${out.stderr.toString()}`.trim().split('\n')[0] ?? 'unknown'
    } catch {
      return 'missing'
    }
  }
  const info = await env.redis.info('server')
  return {
    bun: Bun.version,
    node: firstLine([process.env.BENCH_NODE ?? 'node', '--version']),
    redis: /^redis_version:(\S+)/m.exec(info)?.[1] ?? 'unknown',
    wrk: /wrk (\S+)/.exec(firstLine(['wrk', '--version']))?.[1] ?? 'missing',
  }
}

// Cleanup runs once, whichever way the run ends: children first (by pid), then keys and database.
const state: { env?: BenchEnv } = {}
let cleaning: Promise<void> | undefined
const cleanup = () => {
  cleaning ??= (async () => {
    await stopAllChildren()
    await state.env?.close()
  })()
  return cleaning
}
for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  process.on(signal, () => {
    log(`${signal}: stopping servers and removing bench data`)
    void cleanup().finally(() => process.exit(code))
  })
}
process.on('exit', killAllChildrenNow)

try {
  await main(parseOptions(process.argv.slice(2)), state)
  await cleanup()
  process.exit(0)
} catch (error) {
  console.error(`bench: ${(error as Error).stack ?? error}`)
  await cleanup()
  process.exit(1)
}
