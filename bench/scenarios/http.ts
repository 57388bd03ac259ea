// HTTP scenarios (one wrk run a round) and the raw argon2 ceiling, run in rounds: every round runs
// each scenario once, so that all of them share the machine's noise.

import { join } from 'node:path'
import { cpuTimeMs, median, ROOT, runWrk, type WrkResult, type WrkRun } from '../lib/measure'
import type { Server } from '../lib/servers'

export interface Sample extends WrkResult {
  /** Server process CPU (user + system, all threads) per request, in microseconds. */
  cpuUs: number
  /** The part of cpuUs on the main thread, where Bun runs JavaScript and the HTTP server. */
  mainUs: number
}

export interface Scenario {
  readonly name: string
  /** Logins and argon2 run for `loginSeconds` a round instead of `seconds`. */
  readonly slow: boolean
  run(seconds: number): Promise<Sample>
}

export function wrkScenario(name: string, server: Server, wrk: Omit<WrkRun, 'seconds'>): Scenario {
  return {
    name,
    slow: wrk.script === 'login.lua',
    async run(seconds) {
      const { pid } = server.proc
      const before = [cpuTimeMs(pid), cpuTimeMs(pid, true)] as const
      const result = await runWrk({ ...wrk, seconds })
      const perRequest = (ms: number) => (ms * 1000) / result.requests
      return {
        ...result,
        cpuUs: perRequest(cpuTimeMs(pid) - before[0]),
        mainUs: perRequest(cpuTimeMs(pid, true) - before[1]),
      }
    },
  }
}

/** argon2id verify() at the server's parameters in a bun process of its own (bench/argon2-raw.ts). */
export function argon2RawScenario(concurrency: number): Scenario {
  const script = join(ROOT, 'bench', 'argon2-raw.ts')
  return {
    name: 'argon2_raw',
    slow: true,
    async run(seconds) {
      const proc = Bun.spawn([process.execPath, script, String(concurrency), String(seconds)], { stdout: 'pipe' })
      const out = await new Response(proc.stdout).text()
      if ((await proc.exited) !== 0) throw new Error(`argon2-raw failed:\n${out}`)
      return { p50Ms: Number.NaN, p99Ms: Number.NaN, mainUs: Number.NaN, failures: 0, ...JSON.parse(out) }
    },
  }
}

export interface Rounds {
  samples: Map<string, Sample[]>
  errors: Map<string, string>
}

/**
 * A warm-up run of each scenario, then the rounds; a scenario that fails is left out from then on.
 * A group (a scenario and its run against the baseline) always runs together.
 */
export async function runRounds(
  groups: Scenario[][],
  options: { rounds: number; seconds: number; loginSeconds: number; warmupSeconds: number },
  log: (line: string) => void,
): Promise<Rounds> {
  const scenarios = groups.flat()
  const out: Rounds = { samples: new Map(scenarios.map((s) => [s.name, []])), errors: new Map() }
  const attempt = (scenario: Scenario, seconds: number) =>
    scenario.run(seconds).catch((error: Error) => void out.errors.set(scenario.name, error.message))
  log(`warm-up: ${scenarios.map((s) => s.name).join(', ')} (${options.warmupSeconds}s each)`)
  for (const scenario of scenarios) await attempt(scenario, options.warmupSeconds)
  for (let round = 0; round < options.rounds; round++) {
    const line: string[] = []
    // Each round starts one group further along, and every other round runs backwards, so that no
    // scenario always follows the same one and, within a group, each goes first every other round.
    const order = groups.flatMap((_, i) => groups[(i + round) % groups.length] as Scenario[])
    for (const scenario of round % 2 ? order.reverse() : order) {
      if (out.errors.has(scenario.name)) continue
      const sample = await attempt(scenario, scenario.slow ? options.loginSeconds : options.seconds)
      if (sample) out.samples.get(scenario.name)?.push(sample)
      line.push(`${scenario.name} ${sample ? Math.round(sample.rps) : 'failed'}`)
      await Bun.sleep(250)
    }
    log(`round ${round + 1}/${options.rounds} (req/s): ${line.join(', ')}`)
  }
  return out
}

/** a's figure ÷ b's in each round, where both sides share the round's noise. */
export function roundRatios(a: Sample[] = [], b: Sample[] = [], figure: 'rps' | 'cpuUs' = 'rps'): number[] {
  return a.slice(0, b.length).map((sample, i) => sample[figure] / (b[i]?.[figure] ?? Number.NaN))
}

/** The median of the per-round ratios: the figure every target and comparison uses. */
export const pairedRatio = (a?: Sample[], b?: Sample[], figure?: 'rps' | 'cpuUs') => median(roundRatios(a, b, figure))
