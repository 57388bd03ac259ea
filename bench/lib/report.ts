// Turns the measurements into the readable tables and the one JSON line, with each target's ratio
// (median of the per-round ratios, so that both sides of a ratio share a round's noise).

import type { RoundSample } from '../scenarios/http'
import type { CacheMemoryResult, RedisMemoryResult } from '../scenarios/memory'
import type { PropagationResult } from '../scenarios/propagation'
import { pairedRatio, summarize } from './samples'
import { fmt, round, table, withUnit } from './stats'

export interface Report {
  options: {
    quick: boolean
    /** Set by --only: targets that nothing measured are then left out instead of shown as n/a. */
    only: Set<string> | null
    rounds: number
    seconds: number
    connections: number
    loginConcurrency: number
  }
  startedAt: Date
  /** When the last measurement ended: a full run should take minutes, not the better part of an hour. */
  finishedAt: Date
  loadStart: number[]
  loadEnd: number[]
  /** Share of the run's CPU time the host stole (see stealShare). */
  stealShare: number
  cpu: string
  cores: number
  versions: Record<string, string>
  http: {
    samples: Map<string, RoundSample[]>
    errors: Map<string, string>
    descriptions: Map<string, string>
    notApplicable: Map<string, string>
  }
  redisMemory: RedisMemoryResult | undefined
  cacheMemory: CacheMemoryResult | undefined
  propagation: PropagationResult | undefined
}

export interface Target {
  name: string
  value: number
  op: '>=' | '<='
  target: number
  unit: string
  how: string
}

const RPS_RATIOS = [
  ['me_cached_vs_ping', 'me_cached', 'ping', 0.8],
  ['me_redis_vs_ping', 'me_redis', 'ping', 0.4],
  ['me_redis_vs_peer_express', 'me_redis', 'peer_express', 10],
  ['me_redis_vs_peer_fastify', 'me_redis', 'peer_fastify', 3],
  ['login_vs_argon2_raw', 'login', 'argon2_raw', 0.9],
] as const

/** Not targets: the ceiling a route that checks no session at all reaches against each peer. */
const CEILINGS = [
  ['ping_vs_peer_express', 'ping', 'peer_express'],
  ['ping_vs_peer_fastify', 'ping', 'peer_fastify'],
  ['verify_vs_ping', 'verify', 'ping'],
] as const

function targets(report: Report): Target[] {
  const out: Target[] = RPS_RATIOS.map(([name, a, b, target]) => ({
    name,
    value: pairedRatio(report.http.samples.get(a), report.http.samples.get(b)),
    op: '>=' as const,
    target,
    unit: 'x',
    how: `${a} req/s ÷ ${b} req/s`,
  }))
  out.push({
    name: 'redis_bytes_per_session',
    value: report.redisMemory?.bytesPerSession ?? Number.NaN,
    op: '<=',
    target: 300,
    unit: 'B',
    how: 'Δused_memory − stream, ÷ sessions',
  })
  out.push({
    name: 'propagation_p99_ms',
    value: report.propagation?.p99Ms ?? Number.NaN,
    op: '<=',
    target: 10,
    unit: 'ms',
    how: 'logout via A → first 401 on B',
  })
  return out
}

const meets = (t: Target, value: number) => (t.op === '>=' ? value >= t.target : value <= t.target)
const verdict = (t: Target) => (!Number.isFinite(t.value) ? 'n/a' : meets(t, t.value) ? 'PASS' : 'MISS')

/** `48 s` or `8 min 2 s`. */
export function duration(seconds: number): string {
  const whole = Math.round(seconds)
  return whole < 60 ? `${whole} s` : `${Math.floor(whole / 60)} min ${whole % 60} s`
}

/**
 * The measured value with as many decimals as its verdict needs: 0.797 against 0.8 prints as
 * `0.797x`, not a `0.80x` beside MISS.
 */
export function shownValue(t: Target): string {
  if (!Number.isFinite(t.value)) return 'n/a'
  const fewest = t.unit === 'B' ? 0 : 2
  let digits = fewest
  while (digits < fewest + 3 && meets(t, Number(t.value.toFixed(digits))) !== meets(t, t.value)) digits++
  return withUnit(fmt(t.value, digits), t.unit)
}

export function renderReport(report: Report): { text: string; json: string } {
  const { http } = report
  const names = [...new Set([...http.samples.keys(), ...http.notApplicable.keys(), ...http.errors.keys()])]
  const scenarioJson: Record<string, unknown> = {}
  const rows: string[][] = []
  for (const name of names) {
    const samples = http.samples.get(name) ?? []
    const why = http.notApplicable.get(name) ?? http.errors.get(name)
    if (samples.length === 0) {
      scenarioJson[name] = { status: 'n/a', reason: why ?? 'no samples' }
      rows.push([name, 'n/a', '', '', '', '', '', '', '', '', '', (why ?? '').split('\n')[0]?.slice(0, 60) ?? ''])
      continue
    }
    const s = summarize(samples)
    scenarioJson[name] = {
      description: http.descriptions.get(name),
      rps: round(s.rps, 1),
      p50_ms: round(s.p50Ms),
      p99_ms: round(s.p99Ms),
      cpu_us_per_req: round(s.cpuUsPerReq, 1),
      main_thread_us_per_req: round(s.mainThreadUsPerReq, 1),
      pool_threads_us_per_req: round(s.poolThreadsUsPerReq, 1),
      wrk_cpu_us_per_req: round(s.loadGenUsPerReq, 1),
      redis_cpu_us_per_req: round(s.redisCpuUsPerReq, 1),
      postgres_cpu_us_per_req: round(s.postgresCpuUsPerReq, 1),
      machine_busy: round(s.machineBusy),
      requests: s.requests,
      failures: s.failures,
      rounds_rps: s.rounds,
      ...(why ? { error: why } : {}),
    }
    rows.push([
      name,
      fmt(s.rps, 0),
      fmt(s.p50Ms, 2),
      fmt(s.p99Ms, 2),
      fmt(s.cpuUsPerReq, 1),
      fmt(s.mainThreadUsPerReq, 1),
      fmt(s.loadGenUsPerReq, 1),
      fmt(s.redisCpuUsPerReq, 1),
      fmt(s.postgresCpuUsPerReq, 1),
      pct(s.machineBusy),
      String(s.failures),
      s.rounds.join(' '),
    ])
  }

  const list = targets(report).filter((t) => report.options.only === null || Number.isFinite(t.value))
  const lines: string[] = []
  const o = report.options
  lines.push('')
  const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ')
  const durationS = (report.finishedAt.getTime() - report.startedAt.getTime()) / 1000
  lines.push(
    `Tessera benchmark (${o.quick ? 'quick' : 'full'}): ${report.cores} cores (${report.cpu}), shared by wrk, servers and Redis; ` +
      `${o.rounds} rounds x ${o.seconds}s, ${o.connections} connections (login: ${o.loginConcurrency}); ` +
      `load ${load(report.loadStart)} -> ${load(report.loadEnd)}; CPU time stolen by the host ${pct(report.stealShare)}; ` +
      `took ${duration(durationS)}`,
  )
  if (rows.length > 0) {
    lines.push('')
    lines.push(
      table(
        [
          'scenario',
          'req/s',
          'p50 ms',
          'p99 ms',
          'server µs/req',
          'main thread',
          'wrk µs/req',
          'Redis µs/req',
          'PG µs/req',
          'box busy',
          'failures',
          'req/s per round',
        ],
        rows,
      ),
    )
  }
  const rm = report.redisMemory
  if (rm) {
    lines.push('')
    lines.push(
      `redis_memory: ${fmt(rm.bytesPerSession, 0)} B/session over ${rm.sessions} sessions and ${rm.users} users ` +
        `(key-level MEMORY USAGE sum: ${fmt(rm.keyBytesPerSession, 0)} B/session over ${rm.keys} keys; ` +
        `stream, excluded: ${fmt(rm.streamBytesPerEvent, 0)} B/event; ${rm.distinctUserAgents} distinct UAs of ` +
        `${rm.userAgentLength.min}-${rm.userAgentLength.max} chars)`,
    )
    lines.push(
      `  by kind of key (MEMORY USAGE): ${rm.kinds
        .map((k) => `${k.kind} ${k.keys} keys ${fmt(k.bytesPerSession, 0)} B/session`)
        .join('; ')}`,
    )
    for (const [label, k] of [
      ['session', rm.session],
      ['user index', rm.index],
    ] as const) {
      lines.push(`  ${label.padEnd(10)} ${k.key}: ${k.type}, ${k.encoding}, ${k.memoryUsage} B, size ${k.size}`)
    }
  }
  const cm = report.cacheMemory
  if (cm) {
    lines.push('')
    lines.push(
      `cache_memory: ${fmt(cm.bytesPerSession, 0)} B/session over ${cm.sessions} sessions ` +
        `(cache on: RSS ${fmt(cm.cacheOn.rssBeforeMb, 1)} -> ${fmt(cm.cacheOn.rssAfterMb, 1)} MiB, ${fmt(cm.cacheOn.growthBytesPerSession, 0)} B/session; ` +
        `cache off: ${fmt(cm.cacheOff.rssBeforeMb, 1)} -> ${fmt(cm.cacheOff.rssAfterMb, 1)} MiB, ${fmt(cm.cacheOff.growthBytesPerSession, 0)} B/session; ` +
        `failures ${cm.cacheOn.failures + cm.cacheOff.failures}` +
        `${cm.cacheOn.failures + cm.cacheOff.failures > 0 ? ': INVALID, not every session was served' : ''})`,
    )
  }
  const p = report.propagation
  if (p) {
    lines.push('')
    lines.push(
      `propagation: p50 ${fmt(p.p50Ms, 2)} ms, p99 ${fmt(p.p99Ms, 2)} ms, max ${fmt(p.maxMs, 2)} ms over ${p.trials} trials ` +
        `(after A's answer: p50 ${fmt(p.afterAnswerP50Ms, 2)}, p99 ${fmt(p.afterAnswerP99Ms, 2)} ms; ` +
        `stale 200s from B after logout: ${p.staleAnswers}; failed trials: ${p.failures}; ` +
        `CPU time stolen by the host meanwhile: ${pct(p.stealShare)})`,
    )
  }
  lines.push('')
  lines.push(
    table(
      ['target', 'measured', 'target', 'result', 'how'],
      list.map((t) => [t.name, shownValue(t), `${t.op} ${withUnit(String(t.target), t.unit)}`, verdict(t), t.how]),
    ),
  )
  const ceilings = CEILINGS.map(([name, a, b]) => ({
    name,
    how: `${a} ÷ ${b}`,
    value: pairedRatio(report.http.samples.get(a), report.http.samples.get(b)),
  })).filter((c) => report.options.only === null || Number.isFinite(c.value))
  if (ceilings.some((c) => Number.isFinite(c.value))) {
    lines.push('')
    lines.push(
      `context (no target): ${ceilings.map((c) => `${c.name} ${withUnit(fmt(c.value, 2), 'x')}`).join(', ')} ` +
        '(what a request that touches no session achieves against each peer)',
    )
  }
  const passed = list.filter((t) => verdict(t) === 'PASS').length
  const missed = list.filter((t) => verdict(t) === 'MISS').length
  lines.push('')
  lines.push(`${passed} PASS, ${missed} MISS, ${list.length - passed - missed} n/a`)

  const json = JSON.stringify({
    bench: 'tessera',
    mode: o.quick ? 'quick' : 'full',
    at: report.startedAt.toISOString(),
    duration_s: round(durationS, 1),
    machine: {
      cores: report.cores,
      cpu: report.cpu,
      shared: true,
      load_start: report.loadStart.map((l) => round(l, 2)),
      load_end: report.loadEnd.map((l) => round(l, 2)),
      steal_share: round(report.stealShare, 3),
      ...report.versions,
    },
    settings: {
      rounds: o.rounds,
      seconds: o.seconds,
      connections: o.connections,
      login_concurrency: o.loginConcurrency,
    },
    scenarios: scenarioJson,
    redis_memory: rm
      ? {
          sessions: rm.sessions,
          users: rm.users,
          bytes_per_session: round(rm.bytesPerSession, 1),
          key_bytes_per_session: round(rm.keyBytesPerSession, 1),
          stream_bytes_per_event: round(rm.streamBytesPerEvent, 1),
          keys: rm.keys,
          create_seconds: round(rm.seconds, 2),
          distinct_user_agents: rm.distinctUserAgents,
          by_kind: Object.fromEntries(
            rm.kinds.map((k) => [k.kind, { keys: k.keys, bytes_per_session: round(k.bytesPerSession, 1) }]),
          ),
          session_key: rm.session,
          index_key: rm.index,
        }
      : { status: 'n/a' },
    cache_memory: cm
      ? {
          sessions: cm.sessions,
          bytes_per_session: round(cm.bytesPerSession, 1),
          valid: cm.cacheOn.failures + cm.cacheOff.failures === 0,
          cache_on: { ...roundAll({ ...cm.cacheOn, statuses: 0 }), statuses: cm.cacheOn.statuses },
          cache_off: { ...roundAll({ ...cm.cacheOff, statuses: 0 }), statuses: cm.cacheOff.statuses },
        }
      : { status: 'n/a' },
    propagation: p ? roundAll(p) : { status: 'n/a' },
    targets: Object.fromEntries(
      list.map((t) => [t.name, { value: round(t.value), target: `${t.op} ${t.target}`, result: verdict(t) }]),
    ),
    context: Object.fromEntries(ceilings.map((c) => [c.name, round(c.value)])),
    pass: passed,
    miss: missed,
  })
  return { text: lines.join('\n'), json }
}

const pct = (share: number) => (Number.isFinite(share) ? `${Math.round(share * 100)}%` : 'n/a')

function roundAll<T extends object>(value: T): Record<string, number | null> {
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), round(Number(v))]),
  )
}
