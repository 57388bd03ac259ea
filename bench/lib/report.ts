// Turns a run's measurements into one Markdown report (printed, and saved as bench/results/latest.md)
// and a JSON object with every figure. Each ratio is the median of per-round ratios.

import { type Boot, bootRatio } from '../scenarios/boot'
import { pairedRatio, type Rounds, roundRatios, type Sample } from '../scenarios/http'
import type { CacheMemory, RedisMemory } from '../scenarios/memory'
import type { Propagation } from '../scenarios/propagation'
import { median } from './measure'

export interface Report {
  quick: boolean
  /** Set by --only: targets that nothing measured are then left out instead of shown as n/a. */
  only: boolean
  settings: { rounds: number; seconds: number; loginSeconds: number; connections: number; loginConcurrency: number }
  machine: { cpu: string; cores: number; bun: string; node: string; redis: string }
  startedAt: Date
  finishedAt: Date
  load: [number, number]
  /** Share of the run's CPU time the host stole (see stealShare). */
  steal: number
  http: Rounds
  /** With --baseline: its short hash, and the scenarios run against both revisions. */
  baseline?: { label: string; scenarios: string[] }
  redisMemory?: RedisMemory
  cacheMemory?: CacheMemory
  propagation?: Propagation
  /** The same on the bench's Redis Cluster. */
  propagationCluster?: Propagation
  boot?: Boot
}

export interface Target {
  name: string
  value: number
  op: '>=' | '<='
  target: number
  unit: string
  how: string
  /** With --baseline: the same ratio between the baseline's servers. */
  baseline?: number
}

/** The suffix that names a scenario's run against the baseline's server: `me_cached@base`. */
export const BASE = '@base'
/** How far a scenario may move from the baseline's before the comparison flags it. */
export const BASELINE_TOLERANCE = 0.05

export function targets(r: Pick<Report, 'http' | 'redisMemory' | 'propagation' | 'propagationCluster'>): Target[] {
  const samples = (name: string) => r.http.samples.get(name)
  const ratio = (a: string, b: string, target: number): Target => {
    const value = pairedRatio(samples(a), samples(b))
    // The peers and argon2_raw do not depend on the revision: both revisions are measured against them.
    const baseline = pairedRatio(samples(`${a}${BASE}`), samples(`${b}${BASE}`) ?? samples(b))
    return {
      name: `${a} ÷ ${b}`,
      value,
      baseline,
      op: '>=',
      target,
      unit: 'x',
      how: 'req/s, median of the rounds’ ratios',
    }
  }
  return [
    ratio('me_cached', 'ping', 0.8),
    ratio('me_redis', 'ping', 0.4),
    ratio('me_redis', 'peer_express', 10),
    ratio('me_redis', 'peer_fastify', 3),
    ratio('login', 'argon2_raw', 0.9),
    ratio('me_redis_cluster', 'me_redis', 0.8),
    {
      name: 'Redis bytes per session',
      value: r.redisMemory?.bytesPerSession ?? Number.NaN,
      op: '<=',
      target: 300,
      unit: 'B',
      how: 'Δ used_memory − event stream, ÷ sessions',
    },
    {
      name: 'propagation p99',
      value: r.propagation?.p99Ms ?? Number.NaN,
      op: '<=',
      target: 10,
      unit: 'ms',
      how: 'logout through A → first 401 from B',
    },
    {
      name: 'propagation p99, cluster',
      value: r.propagationCluster?.p99Ms ?? Number.NaN,
      op: '<=',
      target: 10,
      unit: 'ms',
      how: 'the same, on a 3-master Redis Cluster',
    },
  ]
}

const meets = (t: Target, value: number) => (t.op === '>=' ? value >= t.target : value <= t.target)
const verdict = (t: Target) => (!Number.isFinite(t.value) ? 'n/a' : meets(t, t.value) ? 'PASS' : 'MISS')
const withUnit = (value: string, unit: string) => (unit === 'x' ? `${value}x` : `${value} ${unit}`)
const pct = (share: number) => (Number.isFinite(share) ? `${Math.round(share * 100)} %` : 'n/a')

export function fmt(value: number | undefined, digits = 1): string {
  if (value === undefined || !Number.isFinite(value)) return 'n/a'
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

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

/**
 * A Markdown table, padded so that it reads as well in a terminal. `align` has an `l` or `r` for each
 * column: by default the first is left-aligned and the figures after it right-aligned.
 */
export function table(header: readonly string[], rows: readonly (readonly string[])[], align = 'l'): string {
  const widths = header.map((h, i) => Math.max(3, h.length, ...rows.map((row) => (row[i] ?? '').length)))
  const left = (i: number) => (align[i] ?? 'r') === 'l'
  const line = (cells: readonly string[]) =>
    `| ${widths.map((w, i) => (left(i) ? (cells[i] ?? '').padEnd(w) : (cells[i] ?? '').padStart(w))).join(' | ')} |`
  const rule = `| ${widths.map((w, i) => (left(i) ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`
  return [line(header), rule, ...rows.map(line)].join('\n')
}

/** Current ÷ baseline for each scenario, in req/s and in server CPU per request, flagged beyond the tolerance. */
export function baselineRows(http: Rounds, scenarios: readonly string[]) {
  return scenarios.map((name) => {
    const [current, base] = [http.samples.get(name), http.samples.get(`${name}${BASE}`)]
    const rps = pairedRatio(current, base)
    const cpu = pairedRatio(current, base, 'cpuUs')
    const flagged = ![rps, cpu].every((ratio) => Math.abs(ratio - 1) <= BASELINE_TOLERANCE)
    // A ratio that could not be measured (NaN) is flagged too: it is not known to be within.
    return { name, rps, cpu, flagged, rpsRounds: roundRatios(current, base) }
  })
}

const FIGURES = ['rps', 'p50Ms', 'p99Ms', 'cpuUs', 'mainUs'] as const

export function renderReport(r: Report): { markdown: string; json: object } {
  const { settings: s, machine: m } = r
  const at = r.startedAt.toISOString().slice(0, 16).replace('T', ' ')
  const took = duration((r.finishedAt.getTime() - r.startedAt.getTime()) / 1000)
  const out = [
    `### ${r.quick ? 'Quick' : 'Full'} run, ${at} UTC: ${m.cpu} (${m.cores} cores), Bun ${m.bun}`,
    '',
    `${s.rounds} rounds of ${s.seconds} s (logins ${s.loginSeconds} s), wrk with ${s.connections} connections ` +
      `(logins ${s.loginConcurrency}); Node ${m.node}, Redis ${m.redis}; load ${fmt(r.load[0], 2)} → ` +
      `${fmt(r.load[1], 2)}; CPU time stolen by the host ${pct(r.steal)}; took ${took}.`,
  ]
  // Medians over the rounds; failures are summed.
  const summaries = Object.fromEntries(
    [...r.http.samples].map(([name, samples]) => {
      const pick = (figure: keyof Sample) => median(samples.map((sample) => sample[figure]))
      const failures = samples.reduce((total, sample) => total + sample.failures, 0)
      const roundsRps = samples.map((sample) => Math.round(sample.rps))
      const { rps, p50Ms, p99Ms, cpuUs, mainUs } = Object.fromEntries(FIGURES.map((f) => [f, pick(f)]))
      return [name, { rps, p50Ms, p99Ms, cpuUs, mainUs, failures, roundsRps }]
    }),
  )
  const rows = Object.entries(summaries).map(([name, x]) => [
    name,
    fmt(x.rps, 0),
    fmt(x.p50Ms, 2),
    fmt(x.p99Ms, 2),
    fmt(x.cpuUs),
    fmt(x.mainUs),
    String(x.failures),
    x.roundsRps.join(' '),
  ])
  const header = ['scenario', 'req/s', 'p50 ms', 'p99 ms', 'server µs/req', 'main thread', 'failures']
  if (rows.length > 0) out.push('', table([...header, 'req/s per round'], rows))
  for (const [name, error] of r.http.errors) out.push('', `${name} failed: ${error.split('\n')[0]}`)

  const list = targets(r).filter((t) => !r.only || Number.isFinite(t.value))
  // With --baseline, a column gives each ratio as measured between the baseline's servers.
  const keep = (_: string, column: number) => r.baseline !== undefined || column !== 2
  const base = (t: Target) => (t.baseline === undefined ? '' : shownValue({ ...t, value: t.baseline }))
  const unit = (t: Target) => withUnit(`${t.op} ${t.target}`, t.unit)
  const targetRows = list.map((t) => [t.name, shownValue(t), base(t), unit(t), verdict(t), t.how].filter(keep))
  const targetHeader = ['target', 'measured', `baseline ${r.baseline?.label}`, 'target', 'result', 'how']
  out.push('', table(targetHeader.filter(keep), targetRows, r.baseline ? 'lrrrll' : 'lrrll'))

  const { redisMemory: rm, cacheMemory: cm, propagation: p, propagationCluster: pc } = r
  const propagationRow = (name: string, q: Propagation) => [
    name,
    `p50 ${fmt(q.p50Ms, 2)} ms, p99 ${fmt(q.p99Ms, 2)} ms, max ${fmt(q.maxMs, 2)} ms over ${q.trials} trials; ` +
      `stale 200s ${q.staleAnswers}; failed trials ${q.failures}; CPU time stolen meanwhile ${pct(q.stealShare)}`,
  ]
  const other = [
    rm && [
      'redis_memory',
      `${fmt(rm.bytesPerSession, 0)} B per session (${fmt(rm.sessions, 0)} sessions of ${fmt(rm.users, 0)} users, ` +
        `${fmt(rm.distinctUserAgents, 0)} distinct user agents); event stream, not counted: ${fmt(rm.streamBytesPerEvent, 0)} B per event`,
    ],
    cm && [
      'cache_memory',
      `${fmt(cm.bytesPerSession, 0)} B of server RSS per cached session (${fmt(cm.sessions, 0)} sessions)` +
        (cm.failures === 0 ? '' : `; VOID: ${cm.failures} visits were not answered 200`),
    ],
    p && propagationRow('propagation', p),
    pc && propagationRow('propagation_cluster', pc),
    r.boot && [
      'boot',
      `to the first 200 on /readyz: binary ${fmt(median(r.boot.binaryMs), 0)} ms, bun src/index.ts ` +
        `${fmt(median(r.boot.bunMs), 0)} ms (medians of ${r.boot.runs} each); binary ÷ bun ${fmt(bootRatio(r.boot), 2)}x; ` +
        `binary ${fmt(r.boot.binaryBytes / 1_000_000, 0)} MB`,
    ],
  ].filter((row) => row !== undefined)
  if (other.length > 0) out.push('', table(['measurement', 'result'], other, 'll'))

  const comparison = r.baseline ? baselineRows(r.http, r.baseline.scenarios) : []
  if (r.baseline) {
    const flag = `beyond ±${BASELINE_TOLERANCE * 100} %`
    const perRound = (ratios: number[]) => ratios.map((ratio) => fmt(ratio, 2)).join(' ')
    const compared = comparison.map((c) => [
      c.name,
      fmt(c.rps, 3),
      fmt(c.cpu, 3),
      c.flagged ? 'yes' : '',
      perRound(c.rpsRounds),
    ])
    out.push('', `Current ÷ baseline ${r.baseline.label}, in the same rounds:`, '')
    out.push(table(['scenario', 'req/s ratio', 'CPU/req ratio', flag, 'req/s ratio per round'], compared))
  }
  const count = (v: string) => list.filter((t) => verdict(t) === v).length
  out.push('', `${count('PASS')} PASS, ${count('MISS')} MISS, ${count('n/a')} n/a`)

  const json = {
    ...r,
    http: undefined,
    scenarios: summaries,
    rounds: Object.fromEntries(r.http.samples),
    errors: Object.fromEntries(r.http.errors),
    targets: list.map((t) => ({ ...t, result: verdict(t) })),
    baseline: r.baseline && { label: r.baseline.label, comparison },
  }
  return { markdown: out.join('\n'), json }
}
