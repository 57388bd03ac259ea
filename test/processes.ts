// Real processes on loopback for multi-instance and fault tests: Tessera servers, audit consumers
// and test-owned redis-server instances. Every process is stopped by the PID it was started with.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Subprocess } from 'bun'
import { ADMIN_PASSWORD, freePort } from './services'

const ROOT = join(import.meta.dir, '..')

export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return
    await Bun.sleep(25)
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
}

export interface ServerProcess {
  url: string
  port: number
  proc: Subprocess
  stop(): Promise<void>
  output(): string
}

function collect(stream: ReadableStream<Uint8Array> | null | undefined, into: string[]) {
  if (!stream) return
  const reader = stream.getReader()
  const decoder = new TextDecoder()
  const pump = async (): Promise<void> => {
    const { done, value } = await reader.read()
    if (done) return
    into.push(decoder.decode(value))
    return pump()
  }
  pump().catch(() => {})
}

/** Environment for a spawned Tessera process: only what it needs, nothing from the developer's shell. */
export function processEnv(vars: Record<string, string>): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    NODE_ENV: 'test',
    ADMIN_PASSWORD,
    LOG_LEVEL: 'warn',
    REGISTRATION_MAX_PER_IP: '1000000',
    // No load balancer waits on a test's servers (the rolling-restart test sets its own).
    SHUTDOWN_DELAY: '0s',
    COOKIE_SECURE: 'false',
    HOST: '127.0.0.1',
    ...vars,
  }
}

/** Stops a process this test started: SIGTERM, then SIGKILL after 5 s. */
export async function stopProcess(proc: Subprocess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return
  proc.kill('SIGTERM')
  const exited = await Promise.race([proc.exited.then(() => true), Bun.sleep(5_000).then(() => false)])
  if (!exited) proc.kill('SIGKILL')
  await proc.exited
}

export interface StartOptions {
  /** The checkout to run from: another revision's worktree (the bench's --baseline, upgrade tests). */
  root?: string
  /** Another server that answers /healthz (the bench's peers on Node), run in `root`. */
  command?: string[]
}

/** Starts `bun src/index.ts` (or `command`) without waiting for it: for an instance expected to fail at boot. */
export function spawnServer(
  vars: Record<string, string>,
  { root = ROOT, command = ['bun', 'src/index.ts'] }: StartOptions = {},
): ServerProcess {
  const port = Number(vars.PORT ?? freePort())
  const lines: string[] = []
  const proc = Bun.spawn(command, {
    cwd: root,
    env: processEnv({ ...vars, PORT: String(port) }),
    stdout: 'pipe',
    stderr: 'pipe',
  })
  collect(proc.stdout, lines)
  collect(proc.stderr, lines)
  const url = `http://127.0.0.1:${port}`
  return { url, port, proc, stop: () => stopProcess(proc), output: () => lines.join('') }
}

/** Starts `bun src/index.ts` (or `command`) and waits until /healthz answers. */
export async function startServer(vars: Record<string, string>, options: StartOptions = {}): Promise<ServerProcess> {
  const server = spawnServer(vars, options)
  try {
    await waitFor(async () => (await fetch(`${server.url}/healthz`)).ok, 20_000, `server on ${server.url}`)
  } catch (error) {
    await server.stop()
    throw new Error(`${(error as Error).message}\n${server.output()}`)
  }
  return server
}

/**
 * Starts a CLI entry point (e.g. src/cli/audit.ts) with Bun, or a whole command (e.g. a compiled
 * binary and its arguments) in `root`, without waiting for anything.
 */
export function startCli(entry: string | string[], vars: Record<string, string>, root = ROOT) {
  const lines: string[] = []
  const command = typeof entry === 'string' ? ['bun', entry] : entry
  const proc = Bun.spawn(command, { cwd: root, env: processEnv(vars), stdout: 'pipe', stderr: 'pipe' })
  collect(proc.stdout, lines)
  collect(proc.stderr, lines)
  return { proc, stop: () => stopProcess(proc), output: () => lines.join('') }
}

/** Runs a command to its end; what it printed, trimmed, and its exit code. */
export async function runToEnd(
  command: string[],
  options: { cwd: string; env: Record<string, string>; stdin?: string },
): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn(command, {
    cwd: options.cwd,
    env: options.env,
    stdin: options.stdin === undefined ? 'ignore' : new Blob([options.stdin]),
    stdout: 'pipe',
    stderr: 'pipe',
  })
  const [code, stdout, stderr] = await Promise.all([
    proc.exited,
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
  ])
  return { code, stdout: stdout.trim(), stderr: stderr.trim() }
}

export interface RedisProcess {
  port: number
  url: string
  start(): Promise<void>
  stop(): Promise<void>
  /** Stops the server and removes its data directory. */
  destroy(): Promise<void>
}

/**
 * A test-owned redis-server on its own port. With `persistent`, it keeps an append-only file in a
 * temporary directory, so data survives stop/start like a production Redis with AOF. `args` are
 * passed on (`--requirepass`, `--user`, `--tls-port` and the like); the plain port stays open.
 */
export function redisServer(port: number, { persistent = false, args: extra = [] as string[] } = {}): RedisProcess {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-redis-'))
  let proc: Subprocess | undefined
  const url = `redis://127.0.0.1:${port}/0`
  const ping = async () => {
    const socket = await Bun.connect({ hostname: '127.0.0.1', port, socket: { data() {} } })
    socket.end()
    return true
  }
  return {
    port,
    url,
    async start() {
      const args = ['redis-server', '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '']
      args.push('--appendonly', persistent ? 'yes' : 'no')
      if (persistent) args.push('--appendfsync', 'always')
      args.push(...extra)
      proc = Bun.spawn(args, { stdout: 'ignore', stderr: 'ignore' })
      await waitFor(ping, 10_000, `redis-server on ${port}`)
    },
    async stop() {
      if (proc) await stopProcess(proc)
      proc = undefined
    },
    async destroy() {
      if (proc) await stopProcess(proc)
      proc = undefined
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Sends a request to a real server, the way curl would (no Origin header). */
export async function http(
  baseUrl: string,
  method: string,
  path: string,
  options: { body?: unknown; cookie?: string } = {},
): Promise<Response> {
  const headers: Record<string, string> = {}
  if (options.body !== undefined) headers['content-type'] = 'application/json'
  if (options.cookie) headers.cookie = options.cookie
  return fetch(`${baseUrl}${path}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  })
}

/** The first cookie a response sets, as `name=value` for a Cookie header. */
export function cookieFrom(response: Response): string {
  const pair = response.headers.getSetCookie()[0]?.split(';')[0]
  if (!pair) throw new Error(`no cookie set (status ${response.status})`)
  return pair
}

/**
 * Sends raw bytes over one loopback connection and reads the answer until the server closes it:
 * for requests fetch() will not send, such as a malformed Host header. Send `connection: close`.
 */
export async function rawRequest(port: number, bytes: string, timeoutMs = 5000): Promise<Response> {
  const chunks: Buffer[] = []
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no complete answer within ${timeoutMs} ms`)), timeoutMs)
    Bun.connect({
      hostname: '127.0.0.1',
      port,
      socket: {
        open: (socket) => void socket.write(bytes),
        data: (_socket, data) => void chunks.push(Buffer.from(data)),
        close: () => {
          clearTimeout(timer)
          resolve()
        },
        error: (_socket, error) => {
          clearTimeout(timer)
          reject(error)
        },
      },
    }).catch(reject)
  })
  let raw = Buffer.concat(chunks)
  // Interim answers (100 Continue) come first; the answer is the one after them.
  while (/^HTTP\/1\.1 1\d\d /.test(raw.subarray(0, 13).toString('latin1')))
    raw = raw.subarray(raw.indexOf('\r\n\r\n') + 4)
  const end = raw.indexOf('\r\n\r\n')
  if (end < 0) throw new Error(`not an HTTP answer: ${JSON.stringify(raw.toString('latin1').slice(0, 200))}`)
  const [statusLine = '', ...lines] = raw.subarray(0, end).toString('latin1').split('\r\n')
  const status = Number(statusLine.split(' ')[1])
  const headers = new Headers()
  for (const line of lines) {
    const colon = line.indexOf(':')
    headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim())
  }
  let body = raw.subarray(end + 4)
  if (headers.get('transfer-encoding')?.includes('chunked')) {
    const parts: Buffer[] = []
    for (let at = 0; ; ) {
      const lineEnd = body.indexOf('\r\n', at)
      const size = Number.parseInt(body.subarray(at, lineEnd).toString('latin1'), 16)
      if (!(size > 0)) break
      parts.push(body.subarray(lineEnd + 2, lineEnd + 2 + size))
      at = lineEnd + 2 + size + 2
    }
    body = Buffer.concat(parts)
    headers.delete('transfer-encoding')
  }
  const nullBody = status === 204 || status === 304 || status < 200
  return new Response(nullBody ? null : body, { status: Math.max(status, 200), headers })
}

/** Logs in through a real server; returns the Cookie header value (plain-http cookie name `sid`). */
export async function loginVia(baseUrl: string, username: string, password: string): Promise<string> {
  const response = await http(baseUrl, 'POST', '/user/login', { body: { username, password } })
  if (response.status !== 200) throw new Error(`login ${username} via ${baseUrl}: ${response.status}`)
  return cookieFrom(response)
}

/** Polls until `request` answers `status`; returns the milliseconds it took. */
export async function msUntilStatus(
  request: () => Promise<Response>,
  status: number,
  timeoutMs: number,
): Promise<number> {
  const started = performance.now()
  for (;;) {
    const response = await request()
    await response.arrayBuffer()
    const elapsed = performance.now() - started
    if (response.status === status) return elapsed
    if (elapsed > timeoutMs) throw new Error(`still ${response.status} after ${timeoutMs} ms (wanted ${status})`)
  }
}

export interface Unready {
  /** Milliseconds from SIGTERM to the first 503 of /readyz. */
  ms: number
  /** When the signal was sent (Date.now() of the poller), to compare with other clocks of the machine. */
  signalledAtEpochMs: number
  /** That answer's status (599: the connection was refused before any 503 was seen). */
  status: number
  retryAfter: string | null
  body: string
}

/**
 * Sends SIGTERM to a server while polling its /readyz back to back, the poll already running as a
 * load balancer's would be, from a process of its own (test/fixtures/sigterm-until-unready.ts).
 */
export async function sigtermUntilUnready(server: ServerProcess): Promise<Unready> {
  const poller = Bun.spawn(
    ['bun', join(ROOT, 'test/fixtures/sigterm-until-unready.ts'), server.url, String(server.proc.pid)],
    {
      stdout: 'pipe',
      stderr: 'inherit',
    },
  )
  const [out, code] = await Promise.all([new Response(poller.stdout).text(), poller.exited])
  if (code !== 0) throw new Error(`the readiness poller failed (${code}): ${out}`)
  return JSON.parse(out) as Unready
}

export interface TcpProxy {
  port: number
  /** Drops every connection and refuses new ones, as a network partition would. */
  cut(): void
  restore(): void
  close(): void
}

/** A loopback TCP proxy the test can cut, to partition one process from Redis but not the test. */
export function tcpProxy(targetPort: number): TcpProxy {
  let open = true
  type Pair = { client: Bun.Socket<Pair>; upstream?: Bun.Socket<undefined>; pending: Uint8Array[] }
  const pairs = new Set<Pair>()
  const listener = Bun.listen<Pair>({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      async open(client) {
        if (!open) {
          client.terminate()
          return
        }
        const pair: Pair = { client, pending: [] }
        client.data = pair
        pairs.add(pair)
        try {
          pair.upstream = await Bun.connect({
            hostname: '127.0.0.1',
            port: targetPort,
            socket: {
              data: (_s, chunk) => void client.write(chunk),
              close: () => void client.end(),
              error: () => void client.end(),
            },
          })
          for (const chunk of pair.pending) pair.upstream.write(chunk)
          pair.pending = []
        } catch {
          client.end()
        }
      },
      data(client, chunk) {
        const pair = client.data
        if (pair.upstream) pair.upstream.write(chunk)
        else pair.pending.push(new Uint8Array(chunk))
      },
      close(client) {
        client.data?.upstream?.end()
        pairs.delete(client.data)
      },
    },
  })
  return {
    port: listener.port,
    cut() {
      open = false
      for (const pair of pairs) {
        pair.client.terminate()
        pair.upstream?.terminate()
      }
      pairs.clear()
    },
    restore() {
      open = true
    },
    close() {
      this.cut()
      listener.stop(true)
    },
  }
}
