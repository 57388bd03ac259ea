// HTTP scenarios (one wrk run each) and the raw argon2 ceiling, as uniform "run one round" units so
// that run.ts can alternate them and let every scenario share the machine's noise.

import { join } from 'node:path'
import type Redis from 'ioredis'
import { busyShare, cpuTimeMs, machineCpu, mainThreadCpuTimeMs, poolThreadsCpuTimeMs, runChild } from '../lib/processes'
import { ROOT, type RunningServer } from '../lib/servers'
import { runWrk, type WrkRun } from '../lib/wrk'

export interface RoundSample {
  rps: number
  p50Ms: number
  p99Ms: number
  /** Server process CPU (user + system, all threads) per request, in microseconds. */
  cpuUsPerReq: number
  /** The part of cpuUsPerReq spent on the server's main (JavaScript and HTTP) thread. */
  mainThreadUsPerReq: number
  /** The part spent on Bun's worker pool, where argon2 runs (logins; next to nothing otherwise). */
  poolThreadsUsPerReq: number
  /** The load generator's own CPU per request, in microseconds (it shares the same cores). */
  loadGenUsPerReq: number
  /** Share of the machine's CPU time that was busy during the round (all processes, all users). */
  machineBusy: number
  /** Redis CPU per request, in microseconds: indicative only, Redis is shared with other users. */
  redisCpuUsPerReq: number
  /** CPU of the bench database's PostgreSQL backends per request, in microseconds. */
  postgresCpuUsPerReq: number
  requests: number
  failures: number
}

export interface Scenario {
  readonly name: string
  readonly description: string
  run(seconds: number): Promise<RoundSample>
}

/** Redis's own CPU time (user + system) in milliseconds, from INFO cpu. */
async function redisCpuMs(redis: Redis): Promise<number> {
  const info = await redis.info('cpu')
  const read = (field: string) => Number(new RegExp(`^${field}:([\\d.]+)`, 'm').exec(info)?.[1] ?? Number.NaN)
  return (read('used_cpu_user') + read('used_cpu_sys')) * 1000
}

export interface Probes {
  redis: Redis
  postgresCpuMs(): Promise<number>
}

export function wrkScenario(
  name: string,
  description: string,
  server: RunningServer,
  probes: Probes,
  run: Omit<WrkRun, 'seconds'>,
): Scenario {
  const { redis } = probes
  return {
    name,
    description,
    async run(seconds) {
      const cpuBefore = cpuTimeMs(server.pid)
      const mainBefore = mainThreadCpuTimeMs(server.pid)
      const poolBefore = poolThreadsCpuTimeMs(server.pid)
      const redisBefore = await redisCpuMs(redis)
      const postgresBefore = await probes.postgresCpuMs()
      const machineBefore = machineCpu()
      const result = await runWrk({ ...run, seconds })
      const machineAfter = machineCpu()
      const cpuAfter = cpuTimeMs(server.pid)
      const mainAfter = mainThreadCpuTimeMs(server.pid)
      const poolAfter = poolThreadsCpuTimeMs(server.pid)
      const redisAfter = await redisCpuMs(redis)
      const postgresAfter = await probes.postgresCpuMs()
      const perRequest = (ms: number) => (result.requests > 0 ? (ms * 1000) / result.requests : Number.NaN)
      return {
        rps: result.rps,
        p50Ms: result.p50Ms,
        p99Ms: result.p99Ms,
        cpuUsPerReq: perRequest(cpuAfter - cpuBefore),
        mainThreadUsPerReq: perRequest(mainAfter - mainBefore),
        poolThreadsUsPerReq: perRequest(poolAfter - poolBefore),
        loadGenUsPerReq: perRequest(result.cpuMs),
        machineBusy: busyShare(machineBefore, machineAfter),
        redisCpuUsPerReq: perRequest(redisAfter - redisBefore),
        postgresCpuUsPerReq: perRequest(postgresAfter - postgresBefore),
        requests: result.requests,
        failures: result.failures,
      }
    },
  }
}

interface Argon2Raw {
  verifications: number
  perSecond: number
  cpuMsPerVerification: number
  poolCpuMsPerVerification: number
}

/** argon2id verify() at ARGON2_PARAMS in a separate bun process, at the login scenario's concurrency. */
export function argon2RawScenario(concurrency: number): Scenario {
  return {
    name: 'argon2_raw',
    description: `raw argon2id verify() at the server's parameters, ${concurrency} at a time, own process`,
    async run(seconds) {
      const result = await runChild(
        'argon2-raw',
        [process.execPath, join(ROOT, 'bench', 'argon2-raw.ts'), String(concurrency), String(seconds)],
        { cwd: ROOT, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root' } },
        (seconds + 60) * 1000,
      )
      const line = result.stdout.trim().split('\n').pop() ?? ''
      if (result.code !== 0 || !line.startsWith('{')) throw new Error(`argon2-raw failed:\n${result.tail}`)
      const raw = JSON.parse(line) as Argon2Raw
      return {
        rps: raw.perSecond,
        p50Ms: Number.NaN,
        p99Ms: Number.NaN,
        cpuUsPerReq: raw.cpuMsPerVerification * 1000,
        mainThreadUsPerReq: Number.NaN,
        poolThreadsUsPerReq: raw.poolCpuMsPerVerification * 1000,
        loadGenUsPerReq: Number.NaN,
        machineBusy: Number.NaN,
        redisCpuUsPerReq: Number.NaN,
        postgresCpuUsPerReq: Number.NaN,
        requests: raw.verifications,
        failures: 0,
      }
    },
  }
}
