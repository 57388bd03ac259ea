// Starts the servers under test as separate processes (Tessera on Bun, the peers on Node) and waits
// until each answers; every one is registered for shutdown in processes.ts.

import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { BenchEnv } from './env'
import { REDIS_URL } from './env'
import { type Child, runChild, spawnChild, stopChild } from './processes'

export const ROOT = join(import.meta.dir, '..', '..')
export const PEERS_DIR = join(ROOT, 'bench', 'peers')

export interface RunningServer {
  readonly name: string
  readonly url: string
  readonly pid: number
  readonly child: Child
  stop(): Promise<void>
}

async function waitUntilReady(name: string, child: Child, url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.proc.exitCode !== null) {
      throw new Error(`${name} exited with code ${child.proc.exitCode} before it answered:\n${child.tail()}`)
    }
    try {
      const response = await fetch(`${url}/healthz`)
      if (response.ok) return
    } catch {}
    await Bun.sleep(100)
  }
  throw new Error(`${name} did not answer ${url}/healthz within ${timeoutMs / 1000}s:\n${child.tail()}`)
}

/** Waits until a started server answers on loopback `port`, then describes it. */
async function whenReady(name: string, child: Child, port: number): Promise<RunningServer> {
  const url = `http://127.0.0.1:${port}`
  await waitUntilReady(name, child, url)
  return { name, url, pid: child.pid, child, stop: () => stopChild(child) }
}

/** A Tessera server: `bun src/index.ts`, configured only through the environment. */
export async function startTessera(
  env: BenchEnv,
  name: string,
  port: number,
  overrides: Record<string, string> = {},
): Promise<RunningServer> {
  const child = spawnChild(name, [process.execPath, 'src/index.ts'], {
    cwd: ROOT,
    env: env.serverEnv({ PORT: String(port), INSTANCE_ID: `bench-${env.id}-${name}`, ...overrides }),
  })
  return whenReady(name, child, port)
}

/** Installs the peers' pinned dependencies (npm ci) when they are missing. */
export async function ensurePeerDependencies(): Promise<void> {
  if (existsSync(join(PEERS_DIR, 'node_modules', '.package-lock.json'))) return
  console.error('bench: installing peer dependencies (npm ci in bench/peers)...')
  const result = await runChild(
    'npm ci',
    ['npm', 'ci', '--no-audit', '--no-fund', '--loglevel=error'],
    { cwd: PEERS_DIR, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root' } },
    300_000,
  )
  if (result.code !== 0) throw new Error(`npm ci in bench/peers failed:\n${result.tail}`)
}

/** A peer session server on Node (bench/peers/<file>), keyed under its own sub-prefix. */
export async function startPeer(
  env: BenchEnv,
  name: string,
  file: string,
  port: number,
  node = process.env.BENCH_NODE ?? 'node',
): Promise<RunningServer> {
  const child = spawnChild(name, [node, file], {
    cwd: PEERS_DIR,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/root',
      NODE_ENV: 'production',
      PORT: String(port),
      REDIS_URL,
      KEY_PREFIX: `${env.prefix}${name}:`,
    },
  })
  return whenReady(name, child, port)
}

/** The `name=value` pair of a cookie set by a response, ready for a Cookie header. */
export function cookieFrom(response: Response, cookieName: string): string {
  for (const header of response.headers.getSetCookie()) {
    const pair = header.split(';')[0] ?? ''
    if (pair.startsWith(`${cookieName}=`) && pair.length > cookieName.length + 1) return pair
  }
  throw new Error(`no ${cookieName} cookie in the response (status ${response.status})`)
}

/** Logs in to a Tessera server through the front door and returns the Cookie header value. */
export async function loginTessera(server: RunningServer, username: string, password: string): Promise<string> {
  const response = await fetch(`${server.url}/user/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  })
  if (response.status !== 200) throw new Error(`login to ${server.name} answered ${response.status}`)
  return cookieFrom(response, 'sid')
}

/** Logs in to a peer (its /login route creates a session) and returns the Cookie header value. */
export async function loginPeer(server: RunningServer): Promise<string> {
  const response = await fetch(`${server.url}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'bench' }),
  })
  if (response.status !== 200) throw new Error(`login to ${server.name} answered ${response.status}`)
  return cookieFrom(response, 'sid')
}
