// Where a login's CPU goes beside its one argon2 verification, against the budget that the login
// target leaves: the profile behind the login ratio, printed with every run that measures logins.

import type { RoundSample } from '../scenarios/http'
import { pairedRatio, summarize } from './samples'
import { fmt, round, table, withUnit } from './stats'

const LOGINS = ['login', 'login_floor', 'login_floor_pg', 'login_floor_app'] as const
/** The parts of a login's CPU beyond argon2, in the order loginBudget computes them. */
const BUDGET_PARTS = ['pool_minus_raw', 'main_thread', 'other_threads', 'wrk', 'redis', 'postgres'] as const

export interface LoginBudget {
  /** CPU of one raw verification (argon2_raw's whole process), µs. */
  argon2Us: number
  /** The login target, as a share of raw argon2's rate. */
  target: number
  /** CPU beyond one verification that a login may cost and still meet the target, µs. */
  budgetUs: number
  rows: { name: string; beyondUs: number; predicted: number; measured: number; parts: number[] }[]
}

/**
 * Where a login's CPU goes, against what the login target allows. The login rounds keep both cores
 * busy, so every microsecond spent beside a login's one verification (by the server, wrk, Redis or
 * PostgreSQL) is taken from argon2: a login costing `argon2 + beyond` runs at about
 * argon2 / (argon2 + beyond) of raw argon2, and the target allows `beyond` up to argon2 × (1/0.9 − 1).
 * The predicted ratio beside the measured one shows how much of the difference this accounts for.
 * `beyond` is split into the server's worker pool against raw argon2's whole process (argon2 slowed
 * by its neighbours), the main thread, the server's other threads (JIT, GC), wrk, Redis and PostgreSQL.
 */
export function loginBudget(samples: ReadonlyMap<string, RoundSample[]>, target: number): LoginBudget | undefined {
  const raw = samples.get('argon2_raw')
  if (!raw?.length) return undefined
  const argon2Us = summarize(raw).cpuUsPerReq
  const rows = LOGINS.flatMap((name) => {
    const rounds = samples.get(name)
    if (!rounds?.length) return []
    const s = summarize(rounds)
    const parts = [
      s.poolThreadsUsPerReq - argon2Us,
      s.mainThreadUsPerReq,
      s.cpuUsPerReq - s.mainThreadUsPerReq - s.poolThreadsUsPerReq,
      s.loadGenUsPerReq,
      s.redisCpuUsPerReq,
      s.postgresCpuUsPerReq,
    ]
    const beyondUs = parts.reduce((sum, part) => sum + part, 0)
    const measured = pairedRatio(rounds, raw)
    return [{ name, beyondUs, predicted: argon2Us / (argon2Us + beyondUs), measured, parts }]
  })
  if (rows.length === 0 || !Number.isFinite(argon2Us)) return undefined
  return { argon2Us, target, budgetUs: argon2Us * (1 / target - 1), rows }
}

export function renderLoginBudget(budget: LoginBudget): string[] {
  return [
    `Login CPU beyond one argon2 verification, µs per login (argon2_raw: ${fmt(budget.argon2Us, 0)} µs a verification; ` +
      `login >= ${budget.target}x argon2_raw leaves ${fmt(budget.budgetUs, 0)} µs):`,
    table(
      [
        'scenario',
        'beyond',
        'predicted',
        'measured',
        'pool - raw',
        'main thread',
        'other threads',
        'wrk',
        'Redis',
        'PG',
      ],
      budget.rows.map((r) => [
        r.name,
        fmt(r.beyondUs, 0),
        withUnit(fmt(r.predicted, 2), 'x'),
        withUnit(fmt(r.measured, 2), 'x'),
        ...r.parts.map((part) => fmt(part, 0)),
      ]),
    ),
  ]
}

export function loginBudgetJson(budget: LoginBudget) {
  return {
    login_cpu_budget_us: round(budget.budgetUs, 1),
    login_cpu_beyond_argon2_us: Object.fromEntries(
      budget.rows.map((r) => [
        r.name,
        {
          beyond: round(r.beyondUs, 1),
          predicted_ratio: round(r.predicted),
          measured_ratio: round(r.measured),
          ...Object.fromEntries(BUDGET_PARTS.map((part, i) => [part, round(r.parts[i] ?? Number.NaN, 1)])),
        },
      ]),
    ),
  }
}
