// A scenario's rounds reduced to one figure each: medians, and ratios paired round by round so that
// both sides of a ratio share a round's noise.

import type { RoundSample } from '../scenarios/http'
import { median } from './stats'

/** The median of the per-round ratios of a's and b's requests per second. */
export function pairedRatio(a: RoundSample[] | undefined, b: RoundSample[] | undefined): number {
  if (!a?.length || !b?.length) return Number.NaN
  const n = Math.min(a.length, b.length)
  return median(Array.from({ length: n }, (_, i) => (a[i]?.rps ?? Number.NaN) / (b[i]?.rps ?? Number.NaN)))
}

/** The median of each figure over a scenario's rounds; requests and failures are summed. */
export function summarize(samples: RoundSample[]) {
  const pick = (f: (s: RoundSample) => number) => median(samples.map(f))
  return {
    rps: pick((s) => s.rps),
    p50Ms: pick((s) => s.p50Ms),
    p99Ms: pick((s) => s.p99Ms),
    cpuUsPerReq: pick((s) => s.cpuUsPerReq),
    mainThreadUsPerReq: pick((s) => s.mainThreadUsPerReq),
    poolThreadsUsPerReq: pick((s) => s.poolThreadsUsPerReq),
    loadGenUsPerReq: pick((s) => s.loadGenUsPerReq),
    machineBusy: pick((s) => s.machineBusy),
    redisCpuUsPerReq: pick((s) => s.redisCpuUsPerReq),
    postgresCpuUsPerReq: pick((s) => s.postgresCpuUsPerReq),
    requests: samples.reduce((sum, s) => sum + s.requests, 0),
    failures: samples.reduce((sum, s) => sum + s.failures, 0),
    rounds: samples.map((s) => Math.round(s.rps)),
  }
}
