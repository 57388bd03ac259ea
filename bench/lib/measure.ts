// What the bench reads while it runs: CPU time and memory from /proc, wrk's results, and the
// medians and percentiles they are reduced to.

import { readFileSync } from 'node:fs'
import { join } from 'node:path'

export const ROOT = join(import.meta.dir, '..', '..')

/** The middle value (the mean of the two middle ones for an even count); NaN for an empty list. */
export function median(values: readonly number[]): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b)
  const mid = sorted.length >> 1
  if (sorted.length % 2) return sorted[mid] as number
  return sorted.length ? ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2 : Number.NaN
}

/** Nearest-rank percentile; NaN for an empty list. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN
}

const CLOCK_TICKS = Number(Bun.spawnSync(['getconf', 'CLK_TCK']).stdout.toString()) || 100

function statCpuMs(path: string): number {
  const stat = readFileSync(path, 'utf8')
  // The command name (field 2) may contain spaces; the fields after it start at the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS
}

/** User + system CPU time of a process (all threads, or its main thread alone) in milliseconds. */
export const cpuTimeMs = (pid: number, mainThread = false) =>
  statCpuMs(mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`)

/** Resident set size of a process in bytes. */
export function rssBytes(pid: number): number {
  const kib = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
  if (!kib) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(kib) * 1024
}

/** The machine's jiffies (/proc/stat): all, and those the hypervisor gave to another guest. */
export function machineCpu(): { total: number; steal: number } {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '').split(/\s+/).slice(1, 9).map(Number)
  return { total: fields.reduce((sum, n) => sum + n, 0), steal: fields[7] ?? 0 }
}

/** Share of the CPU time the host stole in between: on a shared VM, how noisy a measurement was. */
export function stealShare(before: ReturnType<typeof machineCpu>): number {
  const after = machineCpu()
  return after.total > before.total ? (after.steal - before.steal) / (after.total - before.total) : Number.NaN
}

export interface WrkRun {
  url: string
  seconds: number
  connections: number
  /** A script in bench/wrk: static.lua sends one fixed request, login.lua rotates request bodies. */
  script?: 'static.lua' | 'login.lua'
  headers?: string[]
  scriptArgs?: string[]
}

export interface WrkResult {
  requests: number
  rps: number
  p50Ms: number
  p99Ms: number
  /** Anything but a clean 2xx/3xx: status errors, socket errors and timeouts. */
  failures: number
}

/** One wrk run (one thread, a process of its own), read from the line bench/wrk/report.lua prints. */
export async function runWrk(run: WrkRun): Promise<WrkResult> {
  const options = [
    `-t1`,
    `-c${run.connections}`,
    `-d${run.seconds}s`,
    '--timeout',
    '10s',
    '-s',
    run.script ?? 'static.lua',
  ]
  const headers = (run.headers ?? []).flatMap((header) => ['-H', header])
  const command = ['wrk', ...options, ...headers, run.url, '--', ...(run.scriptArgs ?? [])]
  const proc = Bun.spawn(command, { cwd: join(ROOT, 'bench', 'wrk'), stdout: 'pipe' })
  const out = await new Response(proc.stdout).text()
  const line = out.split('\n').find((l) => l.startsWith('BENCH_JSON '))
  if ((await proc.exited) !== 0 || !line) throw new Error(`wrk failed for ${run.url}:\n${out}`)
  const { requests, seconds, failures, p50_us, p99_us } = JSON.parse(line.slice('BENCH_JSON '.length))
  return { requests, rps: requests / seconds, p50Ms: p50_us / 1000, p99Ms: p99_us / 1000, failures }
}
