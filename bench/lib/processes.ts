// Every child process the benchmark starts is tracked here, so that all of them stop on a normal
// exit, an error or Ctrl-C, each by its own pid and never by name.

import { readdirSync, readFileSync } from 'node:fs'
import type { Subprocess } from 'bun'

export interface Child {
  readonly name: string
  readonly pid: number
  readonly proc: Subprocess<'ignore', 'pipe', 'pipe'>
  /** The last few KiB of stdout and stderr, for error messages. */
  tail(): string
  /** Everything written to stdout (for short-lived tools such as wrk). */
  stdout: Promise<string>
}

const running = new Set<Child>()

async function collect(stream: ReadableStream<Uint8Array>, keep: (text: string) => void): Promise<void> {
  const decoder = new TextDecoder()
  const reader = stream.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return
    keep(decoder.decode(value, { stream: true }))
  }
}

export interface SpawnOptions {
  cwd: string
  env: Record<string, string>
  /** Keep the whole of stdout (wrk); servers keep only a tail. */
  keepStdout?: boolean
}

export function spawnChild(name: string, cmd: string[], options: SpawnOptions): Child {
  const proc = Bun.spawn(cmd, { cwd: options.cwd, env: options.env, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' })
  let tail = ''
  const keepTail = (text: string) => {
    tail = (tail + text).slice(-8192)
  }
  let out = ''
  const stdout = collect(proc.stdout, (text) => {
    if (options.keepStdout) out += text
    keepTail(text)
  }).then(() => out)
  void collect(proc.stderr, keepTail).catch(() => {})
  const child: Child = { name, pid: proc.pid, proc, tail: () => tail, stdout }
  running.add(child)
  void proc.exited.then(() => running.delete(child))
  return child
}

/** Runs a command to completion and returns its exit code and stdout. */
export async function runChild(name: string, cmd: string[], options: SpawnOptions, timeoutMs: number) {
  const child = spawnChild(name, cmd, { ...options, keepStdout: true })
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), timeoutMs)
  try {
    const code = await child.proc.exited
    const usage = child.proc.resourceUsage()
    const cpuMs = usage ? Number(usage.cpuTime.user + usage.cpuTime.system) / 1000 : Number.NaN
    return { code, stdout: await child.stdout, tail: child.tail(), cpuMs }
  } finally {
    clearTimeout(timer)
  }
}

/** SIGTERM, then SIGKILL if the process has not exited within `graceMs`. */
export async function stopChild(child: Child, graceMs = 5_000): Promise<void> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return
  child.proc.kill('SIGTERM')
  const exited = await Promise.race([child.proc.exited.then(() => true), Bun.sleep(graceMs).then(() => false)])
  if (!exited) {
    child.proc.kill('SIGKILL')
    await child.proc.exited
  }
}

export async function stopAllChildren(): Promise<void> {
  await Promise.allSettled([...running].map((child) => stopChild(child)))
}

/** Last resort from a synchronous `exit` handler: no waiting is possible there. */
export function killAllChildrenNow(): void {
  for (const child of running) child.proc.kill('SIGKILL')
}

function statCpuMs(path: string): number {
  const stat = readFileSync(path, 'utf8')
  // The command name (field 2) may contain spaces; fields after it start at the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const utime = Number(fields[11])
  const stime = Number(fields[12])
  return ((utime + stime) * 1000) / clockTicksPerSecond()
}

/** User + system CPU time of a process in milliseconds, from /proc/<pid>/stat (all its threads). */
export function cpuTimeMs(pid: number): number {
  return statCpuMs(`/proc/${pid}/stat`)
}

/**
 * CPU time of the process's main thread alone (where Bun runs JavaScript and the HTTP server);
 * the rest of cpuTimeMs is worker threads: argon2's pool, the garbage collector's helpers.
 */
export function mainThreadCpuTimeMs(pid: number): number {
  return statCpuMs(`/proc/${pid}/task/${pid}/stat`)
}

/**
 * CPU time of Bun's worker pool ("Bun Pool N" threads), where argon2 verifications run: set beside
 * a raw verification's cost, it tells argon2 slowed down by its neighbours from the server's own
 * work. A pool thread that exits between two readings takes its time out of the difference; Bun
 * keeps them while there is work, so within a round that is rare.
 */
export function poolThreadsCpuTimeMs(pid: number): number {
  let total = 0
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      if (readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').startsWith('Bun Pool')) {
        total += statCpuMs(`/proc/${pid}/task/${tid}/stat`)
      }
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return total
}

let ticks: number | undefined
function clockTicksPerSecond(): number {
  if (ticks === undefined) {
    const out = Bun.spawnSync(['getconf', 'CLK_TCK']).stdout.toString().trim()
    ticks = Number(out) || 100
  }
  return ticks
}

/** Resident set size of a process in bytes, from /proc/<pid>/status. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status)
  if (!match) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(match[1]) * 1024
}

export interface MachineCpu {
  busy: number
  /** Time the hypervisor gave this VM's CPUs to someone else (part of busy). */
  steal: number
  total: number
}

/** Jiffies of the whole machine from /proc/stat: busy (user..steal, not idle or iowait) and total. */
export function machineCpu(): MachineCpu {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? ''
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.split(/\s+/).slice(1, 9).map(Number)
  const busy = (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)
  return { busy, steal: steal ?? 0, total: busy + (idle ?? 0) + (iowait ?? 0) }
}

export function busyShare(before: MachineCpu, after: MachineCpu): number {
  return shareOf(before, after, (cpu) => cpu.busy)
}

/**
 * Share of the machine's CPU time stolen by the host in between: on a shared VM, the one figure
 * that says how noisy a run was. Latencies (propagation) suffer from it first.
 */
export function stealShare(before: MachineCpu, after: MachineCpu): number {
  return shareOf(before, after, (cpu) => cpu.steal)
}

function shareOf(before: MachineCpu, after: MachineCpu, part: (cpu: MachineCpu) => number): number {
  const total = after.total - before.total
  return total > 0 ? (part(after) - part(before)) / total : Number.NaN
}
