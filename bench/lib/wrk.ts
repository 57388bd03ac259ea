// Drives HTTP load with wrk (a separate process, one thread) and reads the JSON line that
// bench/wrk/report.lua prints from done().

import { join } from 'node:path'
import { runChild } from './processes'
import { ROOT } from './servers'

const WRK_DIR = join(ROOT, 'bench', 'wrk')

export interface WrkResult {
  requests: number
  seconds: number
  rps: number
  p50Ms: number
  p90Ms: number
  p99Ms: number
  maxMs: number
  /** wrk's own CPU time (user + system) in milliseconds. */
  cpuMs: number
  /** Non-2xx/3xx answers plus socket errors and timeouts: anything but a clean success. */
  failures: number
  errors: { connect: number; read: number; write: number; status: number; timeout: number }
}

interface WrkJson {
  requests: number
  duration_us: number
  errors: WrkResult['errors']
  latency_us: { p50: number; p90: number; p99: number; max: number }
}

export function wrkPath(): string | null {
  return Bun.which('wrk')
}

export const WRK_MISSING = [
  'bench: wrk is not installed. It is the load generator (a separate process, well kept, in Debian).',
  'Run the benchmark with `bun run bench`, which installs it (scripts/system-tools.ts), or: apt-get install -y wrk',
].join('\n')

export interface WrkRun {
  url: string
  seconds: number
  connections: number
  /** Lua script in bench/wrk (static.lua unless the request changes each time). */
  script?: 'static.lua' | 'login.lua'
  headers?: string[]
  scriptArgs?: string[]
}

export async function runWrk(run: WrkRun): Promise<WrkResult> {
  const wrk = wrkPath()
  if (!wrk) throw new Error(WRK_MISSING)
  const cmd = [
    wrk,
    '-t1',
    `-c${run.connections}`,
    `-d${run.seconds}s`,
    '--timeout',
    '10s',
    '-s',
    run.script ?? 'static.lua',
    ...(run.headers ?? []).flatMap((header) => ['-H', header]),
    run.url,
    '--',
    ...(run.scriptArgs ?? []),
  ]
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' }
  const result = await runChild('wrk', cmd, { cwd: WRK_DIR, env }, (run.seconds + 30) * 1000)
  const line = result.stdout.split('\n').find((l) => l.startsWith('BENCH_JSON '))
  if (result.code !== 0 || !line) {
    throw new Error(`wrk failed (exit ${result.code}) for ${run.url}:\n${result.tail}`)
  }
  const json = JSON.parse(line.slice('BENCH_JSON '.length)) as WrkJson
  const seconds = json.duration_us / 1e6
  const e = json.errors
  return {
    requests: json.requests,
    seconds,
    rps: json.requests / seconds,
    p50Ms: json.latency_us.p50 / 1000,
    p90Ms: json.latency_us.p90 / 1000,
    p99Ms: json.latency_us.p99 / 1000,
    maxMs: json.latency_us.max / 1000,
    cpuMs: result.cpuMs,
    failures: e.status + e.connect + e.read + e.write + e.timeout,
    errors: e,
  }
}
