// redis_memory: bytes per live session in Redis, for sessions created through the real createSession
// (session hash, per-user index and permissions, shared user agent, stream event). cache_memory: a
// server's RSS growth per cached session, beside a cache-off server under the same traffic.

import type Redis from 'ioredis'
import type { AppContext } from '../../src/context'
import { cookieValue, createSession } from '../../src/store'
import { median, rssBytes, runWrk } from '../lib/measure'
import type { Server } from '../lib/servers'

/** Real-world user agents, 110-140 characters once their version numbers are filled in. */
const USER_AGENT_TEMPLATES = [
  (v: number, b: number) =>
    `Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${v}.0.${b}.${b % 200} Safari/537.36`,
  (v: number, b: number) =>
    `Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${v}.0.${b}.${b % 150} Safari/537.36`,
  (v: number, b: number) =>
    `Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.${v % 7}.${b % 10} Safari/605.1.15`,
  (v: number, b: number) =>
    `Mozilla/5.0 (iPhone; CPU iPhone OS 17_${v % 7}_${b % 10} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.${v % 7}.1 Mobile/15E148 Safari/604.1`,
  (v: number, b: number) =>
    `Mozilla/5.0 (Linux; Android 14; Pixel 8 Pro) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${v}.0.${b}.${b % 120} Mobile Safari/537.36`,
  (v: number, b: number) =>
    `Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${v}.0.0.0 Safari/537.36 Edg/${v}.0.${b}.80`,
]

/**
 * The sessions draw their user agent from this many distinct ones by a Zipf (s = 1) law: the most
 * common is ~12 % of sessions and the long tail is real, as in production. A design that stores
 * each distinct agent once gains from this; one that copies it into every session does not.
 */
const DISTINCT_USER_AGENTS = 2000

/** The `j`-th distinct user agent (0 <= j < DISTINCT_USER_AGENTS). */
export function userAgent(j: number): string {
  const template = USER_AGENT_TEMPLATES[j % USER_AGENT_TEMPLATES.length] as (v: number, b: number) => string
  return template(118 + (Math.floor(j / 6) % 12), 6000 + Math.floor(j / 72))
}

/** A deterministic Zipf sampler over the distinct user agents (mulberry32 for the uniform draws). */
function zipfUserAgents(seed: number): () => number {
  const cdf: number[] = []
  let sum = 0
  for (let k = 1; k <= DISTINCT_USER_AGENTS; k++) {
    sum += 1 / k
    cdf.push(sum)
  }
  let state = seed >>> 0
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return () => {
    const target = uniform() * sum
    let lo = 0
    let hi = cdf.length - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if ((cdf[mid] as number) < target) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}

/** Creates a session for `user` through the real code path, as a login from `ip` with `ua` would. */
export function createBenchSession(ctx: AppContext, user: { id: number; username: string }, ua: string, ip: string) {
  // One user in ten holds a permission, as in a typical deployment: most users hold none.
  const permissions = user.id % 10 === 0 ? ['user:read'] : []
  return createSession(ctx.store, {
    user: { ...user, permissions, permissionsVersion: permissions.length },
    ip,
    userAgent: ua,
    now: Date.now(),
    event: {
      type: 'login_succeeded',
      username: user.username,
      instance: 'bench',
      actorId: user.id,
      subjectId: user.id,
      ip,
      userAgent: ua,
    },
  })
}

async function usedMemory(redis: Redis): Promise<number> {
  const samples: number[] = []
  for (let i = 0; i < 3; i++) {
    samples.push(Number(/^used_memory:(\d+)/m.exec(await redis.info('memory'))?.[1]))
    await Bun.sleep(150)
  }
  return median(samples)
}

async function runPool(count: number, concurrency: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < count) await work(next++)
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
}

/**
 * Creates `count` sessions over count/4 users with `ctx` (whose key prefix must hold nothing else)
 * and measures Redis's used_memory before and after, the event stream left out: it is capped by
 * EVENT_STREAM_MAXLEN, not by sessions. Returns the figures and the sessions' tokens.
 */
export async function measureRedisMemory(ctx: AppContext, redis: Redis, count: number) {
  const users = Math.max(1, Math.floor(count / 4))
  const pick = zipfUserAgents(count)
  const agents = Array.from({ length: count }, () => userAgent(pick()))
  const tokens: string[] = new Array(count)
  const before = await usedMemory(redis)
  await runPool(count, 64, async (i) => {
    const id = 1_000_000 + (i % users)
    const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`
    const { cookie } = await createBenchSession(ctx, { id, username: `user_${id}` }, agents[i] as string, ip)
    tokens[i] = cookieValue(cookie, ctx.store.partitions)
  })
  const after = await usedMemory(redis)
  let streamBytes = 0
  for (let p = 0; p < ctx.store.partitions; p++) {
    streamBytes += Number(await redis.memory('USAGE', ctx.store.keys.events(p), 'SAMPLES', 0))
  }
  const result = {
    sessions: count,
    users,
    distinctUserAgents: new Set(agents).size,
    bytesPerSession: (after - before - streamBytes) / count,
    streamBytesPerEvent: streamBytes / count,
  }
  return { result, tokens }
}

export type RedisMemory = Awaited<ReturnType<typeof measureRedisMemory>>['result']

/** RSS growth while `server` answers GET /user/me once for each token, after a warm-up on one. */
async function rssGrowth(server: Server, tokens: readonly string[], connections: number) {
  // Warm the JIT and the heap with traffic that adds nothing to the cache (one cookie), then settle.
  await runWrk({ url: `${server.url}/user/me`, seconds: 2, connections, headers: [`Cookie: sid=${tokens[0]}`] })
  await Bun.sleep(1000)
  const before = rssBytes(server.proc.pid)
  let failures = 0
  await runPool(tokens.length, connections, async (i) => {
    const response = await fetch(`${server.url}/user/me`, { headers: { cookie: `sid=${tokens[i]}` } }).catch(() => null)
    await response?.arrayBuffer()
    if (response?.status !== 200) failures++
  })
  await Bun.sleep(1000)
  return { bytes: rssBytes(server.proc.pid) - before, failures }
}

/** (RSS growth with the cache on − RSS growth with it off) ÷ sessions, over the same tokens. */
export async function measureCacheMemory(cacheOn: Server, cacheOff: Server, tokens: string[], connections: number) {
  const on = await rssGrowth(cacheOn, tokens, connections)
  const off = await rssGrowth(cacheOff, tokens, connections)
  return {
    sessions: tokens.length,
    bytesPerSession: (on.bytes - off.bytes) / tokens.length,
    /** Visits not answered 200: any at all means not every session was cached, and the figure is void. */
    failures: on.failures + off.failures,
  }
}

export type CacheMemory = Awaited<ReturnType<typeof measureCacheMemory>>
