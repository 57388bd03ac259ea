// redis_memory: bytes per live session in Redis, sessions created through the real createSession
// (session hash, per-user index, per-user permissions, stream event). cache_memory: server RSS
// growth per cached session, with a cache-off server under the same traffic as the control.

import type Redis from 'ioredis'
import { createSession, hashToken } from '../../src/store'
import { type BenchEnv, deleteKeys } from '../lib/env'
import { rssBytes } from '../lib/processes'
import type { RunningServer } from '../lib/servers'
import { median } from '../lib/stats'
import { runWrk } from '../lib/wrk'

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
 * How many distinct user agents the sessions draw from, and how: a Zipf (s = 1) law, so the most
 * common agent is ~12% of sessions and the long tail is real. A design that stores each distinct
 * agent once gains from this; one that copies it into every session does not.
 */
export const DISTINCT_USER_AGENTS = 2000

/** The `j`-th distinct user agent (0 <= j < DISTINCT_USER_AGENTS). */
export function userAgent(j: number): string {
  const template = USER_AGENT_TEMPLATES[j % USER_AGENT_TEMPLATES.length] as (v: number, b: number) => string
  const ua = template(118 + (Math.floor(j / 6) % 12), 6000 + Math.floor(j / 72))
  if (ua.length < 110 || ua.length > 140) throw new Error(`user agent of ${ua.length} characters: ${ua}`)
  return ua
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

const randomIp = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`

async function usedMemory(redis: Redis): Promise<number> {
  const samples: number[] = []
  for (let i = 0; i < 3; i++) {
    const info = await redis.info('memory')
    samples.push(Number(/^used_memory:(\d+)/m.exec(info)?.[1]))
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

export interface KeyFacts {
  key: string
  type: string
  encoding: string | null
  memoryUsage: number | null
  /** Fields (hash), members (set, zset), length (string). */
  size: number
}

/** TYPE, OBJECT ENCODING, MEMORY USAGE and size of one key, whatever its type. */
async function keyFacts(redis: Redis, key: string): Promise<KeyFacts> {
  const type = await redis.type(key)
  const size =
    type === 'hash'
      ? await redis.hlen(key)
      : type === 'zset'
        ? await redis.zcard(key)
        : type === 'set'
          ? await redis.scard(key)
          : type === 'string'
            ? await redis.strlen(key)
            : 0
  const [encoding, memoryUsage] = await Promise.all([
    redis.object('ENCODING', key) as Promise<string | null>,
    redis.memory('USAGE', key) as Promise<number | null>,
  ])
  return { key: key.replace(/^.*\{auth\}:/, '{auth}:'), type, encoding, memoryUsage, size }
}

/** Groups keys by their first segment after the prefix and hash tag: `s`, `u`, `ua`, `events`... */
function keyKind(key: string, prefix: string): string {
  const rest = key.slice(prefix.length).replace(/^\{[^}]*\}:/, '')
  return rest.split(':', 1)[0] ?? rest
}

export interface KeyKind {
  kind: string
  keys: number
  bytes: number
  bytesPerSession: number
}

export interface RedisMemoryResult {
  sessions: number
  users: number
  bytesPerSession: number
  /** The stream entries the logins appended, excluded above (bounded by EVENT_STREAM_MAXLEN). */
  streamBytesPerEvent: number
  /** Sum of MEMORY USAGE over every key but the stream, per session (cross-check). */
  keyBytesPerSession: number
  keys: number
  /** The same sum, by kind of key. */
  kinds: KeyKind[]
  seconds: number
  session: KeyFacts
  index: KeyFacts
  userAgentLength: { min: number; max: number }
  distinctUserAgents: number
}

export interface MemoryFixture {
  prefix: string
  tokens: string[]
  dispose(): Promise<void>
}

/**
 * Creates `count` sessions over count/4 users under a prefix of their own, as long as the default
 * one, and measures Redis.
 */
export async function measureRedisMemory(
  env: BenchEnv,
  count: number,
): Promise<{ result: RedisMemoryResult; fixture: MemoryFixture }> {
  const prefix = env.shortPrefix
  const ctx = env.contextFor({ REDIS_KEY_PREFIX: prefix })
  const { store } = ctx
  const users = Math.max(1, Math.floor(count / 4))
  const tokens: string[] = new Array(count)
  const pickUserAgent = zipfUserAgents(count)
  const agents = Array.from({ length: count }, () => userAgent(pickUserAgent()))
  const before = await usedMemory(env.redis)
  const started = performance.now()
  await runPool(count, 64, async (i) => {
    const userId = 1_000_000 + (i % users)
    // One user in ten holds a permission, as in a typical deployment: most users hold none.
    const permissions = userId % 10 === 0 ? ['user:read'] : []
    const username = `user_${userId}`
    const ua = agents[i] as string
    const ip = randomIp(i)
    const {
      cookie: { token },
    } = await createSession(store, {
      user: { id: userId, username, permissions, permissionsVersion: permissions.length },
      ip,
      userAgent: ua,
      now: Date.now(),
      event: {
        type: 'login_succeeded',
        username,
        instance: 'bench',
        actorId: userId,
        subjectId: userId,
        ip,
        userAgent: ua,
      },
    })
    tokens[i] = token
  })
  const seconds = (performance.now() - started) / 1000
  const after = await usedMemory(env.redis)
  const streamBytes = Number((await env.redis.memory('USAGE', store.keys.events(0), 'SAMPLES', 0)) ?? 0)

  // Cross-check from the keys themselves: independent of whatever else the shared Redis does.
  const kinds = new Map<string, { keys: number; bytes: number }>()
  let cursor = '0'
  do {
    const [next, batch] = await env.redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 2000)
    cursor = next
    const counted = batch.filter((key) => key !== store.keys.events(0))
    const pipeline = env.redis.pipeline()
    for (const key of counted) pipeline.memory('USAGE', key)
    const replies = (await pipeline.exec()) ?? []
    counted.forEach((key, i) => {
      const kind = kinds.get(keyKind(key, prefix)) ?? { keys: 0, bytes: 0 }
      kind.keys++
      kind.bytes += Number(replies[i]?.[1] ?? 0)
      kinds.set(keyKind(key, prefix), kind)
    })
  } while (cursor !== '0')
  const kindList = [...kinds].map(([kind, k]) => ({ kind, ...k, bytesPerSession: k.bytes / count }))
  const keyBytes = kindList.reduce((sum, k) => sum + k.bytes, 0)

  const result: RedisMemoryResult = {
    sessions: count,
    users,
    bytesPerSession: (after - before - streamBytes) / count,
    streamBytesPerEvent: streamBytes / count,
    keyBytesPerSession: keyBytes / count,
    keys: kindList.reduce((sum, k) => sum + k.keys, 0),
    kinds: kindList.sort((a, b) => b.bytes - a.bytes),
    seconds,
    session: await keyFacts(env.redis, store.keys.session(0, await hashToken(tokens[0] as string))),
    index: await keyFacts(env.redis, store.keys.userIndex(1_000_000)),
    userAgentLength: userAgentLengths(),
    distinctUserAgents: new Set(agents).size,
  }

  const fixture: MemoryFixture = {
    prefix,
    tokens,
    dispose: async () => {
      await deleteKeys(env.redis, prefix)
    },
  }
  return { result, fixture }
}

function userAgentLengths() {
  const lengths = Array.from({ length: DISTINCT_USER_AGENTS }, (_, j) => userAgent(j).length)
  return { min: Math.min(...lengths), max: Math.max(...lengths) }
}

export interface CacheMemoryResult {
  sessions: number
  /** (RSS growth with the cache on − RSS growth with it off) / sessions. */
  bytesPerSession: number
  cacheOn: RssGrowth
  cacheOff: RssGrowth
}

export interface RssGrowth {
  rssBeforeMb: number
  rssAfterMb: number
  growthBytesPerSession: number
  /** Visits not answered 200: any at all means the sessions were not all cached (or read). */
  failures: number
  statuses: Record<string, number>
}

/** GETs `url` once with each cookie, `concurrency` at a time; counts the answers by status. */
async function visitEach(url: string, tokens: readonly string[], concurrency: number) {
  const statuses: Record<string, number> = {}
  await runPool(tokens.length, concurrency, async (i) => {
    let status = 'error'
    try {
      const response = await fetch(url, { headers: { cookie: `sid=${tokens[i]}` } })
      await response.arrayBuffer()
      status = String(response.status)
    } catch {}
    statuses[status] = (statuses[status] ?? 0) + 1
  })
  const failures = tokens.length - (statuses['200'] ?? 0)
  return { failures, statuses }
}

async function rssGrowth(server: RunningServer, fixture: MemoryFixture, connections: number): Promise<RssGrowth> {
  const first = fixture.tokens[0] as string
  // Warm the JIT and the heap with traffic that adds nothing to the cache (one cookie), then settle.
  await runWrk({ url: `${server.url}/user/me`, seconds: 2, connections, headers: [`Cookie: sid=${first}`] })
  await Bun.sleep(1000)
  const before = rssBytes(server.pid)
  const { failures, statuses } = await visitEach(`${server.url}/user/me`, fixture.tokens, connections)
  if (failures > 0)
    console.error(`bench: cache_memory on ${server.name}: answers by status ${JSON.stringify(statuses)}`)
  await Bun.sleep(1000)
  const after = rssBytes(server.pid)
  return {
    rssBeforeMb: before / 2 ** 20,
    rssAfterMb: after / 2 ** 20,
    growthBytesPerSession: (after - before) / fixture.tokens.length,
    failures,
    statuses,
  }
}

/** Visits every cookie once on a cache-on and a cache-off server (same prefix) and compares RSS. */
export async function measureCacheMemory(
  fixture: MemoryFixture,
  servers: { cacheOn: RunningServer; cacheOff: RunningServer },
  connections: number,
): Promise<CacheMemoryResult> {
  const cacheOn = await rssGrowth(servers.cacheOn, fixture, connections)
  const cacheOff = await rssGrowth(servers.cacheOff, fixture, connections)
  return {
    sessions: fixture.tokens.length,
    bytesPerSession: cacheOn.growthBytesPerSession - cacheOff.growthBytesPerSession,
    cacheOn,
    cacheOff,
  }
}
