// Sessions in Redis: each a small hash named by its token's SHA-256, indexed per user, and every
// change written in one Lua script together with the stream event that announces it.

import type Redis from 'ioredis'
import { type AuthEvent, encodeEvent, SESSION_HASH_FIELD } from '../../redis/events'
import type { RedisKeys } from '../../redis/keys'
import { defineScript, runScript } from '../../redis/script'
import { generatePublicId, generateToken, hashToken } from './token'

export interface SessionStore {
  readonly redis: Redis
  readonly keys: RedisKeys
  readonly idleTimeoutMs: number
  readonly absoluteTimeoutMs: number
  readonly touchIntervalMs: number
  readonly maxSessionsPerUser: number
  readonly streamMaxLen: number
}

export interface Session {
  /** SHA-256 of the token; names the Redis key. Never shown to users. */
  tokenHash: string
  /** Random id shown in session listings. */
  publicId: string
  userId: number
  username: string
  permissions: string[]
  createdAt: number
  lastSeenAt: number
  /** Absolute expiry, ms since the epoch. */
  expiresAt: number
  ip: string
  userAgent: string
}

export type EventInput<E extends AuthEvent = AuthEvent> = E extends unknown ? Omit<E, 'at'> : never

// Redis keeps a hash in its compact listpack encoding only while every value is at most 64 bytes;
// a realistic user agent is 110-140, so it is stored in 64-byte slices.
const UA_SLICE = 64
const UA_FIELDS = ['ua', 'ua1', 'ua2', 'ua3'] as const
const MAX_USER_AGENT = UA_SLICE * UA_FIELDS.length

/** Printable ASCII only, bounded: user agents reach logs, listings and Redis, so they are input. */
export function sanitizeUserAgent(value: string | null | undefined): string {
  return (value ?? '').replace(/[^\x20-\x7e]/g, '?').slice(0, MAX_USER_AGENT)
}

function userAgentFields(userAgent: string): string[] {
  const out: string[] = []
  UA_FIELDS.forEach((field, i) => {
    const slice = userAgent.slice(i * UA_SLICE, (i + 1) * UA_SLICE)
    if (slice) out.push(field, slice)
  })
  return out
}

const int = (n: number) => String(Math.floor(n))

const CREATE = defineScript(`
local a = cjson.decode(ARGV[1])
local now = a.now
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%d', now))
-- Index entries whose session idled out are pruned here, so the index never grows without bound.
-- The session keys are built from the prefix; they share the hash tag, hence the slot.
for _, h in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if redis.call('EXISTS', a.prefix .. h) == 0 then redis.call('ZREM', KEYS[2], h) end
end
-- A permission set written by a later grant or revoke wins over the one read at login.
local perms = a.perms
local stored = redis.call('HMGET', KEYS[3], 'v', 'p')
if stored[1] and tonumber(stored[1]) > a.version then
  perms = stored[2]
else
  redis.call('HSET', KEYS[3], 'v', string.format('%d', a.version), 'p', perms)
end
redis.call('PEXPIRE', KEYS[3], string.format('%d', a.permsTtl))
local evicted = {}
local count = redis.call('ZCARD', KEYS[2])
if count >= a.max then
  for _, h in ipairs(redis.call('ZRANGE', KEYS[2], 0, count - a.max)) do
    redis.call('DEL', a.prefix .. h)
    redis.call('ZREM', KEYS[2], h)
    evicted[#evicted + 1] = h
  end
end
redis.call('HSET', KEYS[1], 'p', perms, unpack(a.fields))
redis.call('PEXPIRE', KEYS[1], string.format('%d', math.max(1, math.min(a.idle, a.expires - now))))
redis.call('ZADD', KEYS[2], string.format('%d', a.expires), a.hash)
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[2], last[2])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', a.maxlen, '*', unpack(a.event))
if #evicted > 0 then
  local ev = a.evictEvent
  ev[#ev + 1] = a.hashField
  ev[#ev + 1] = table.concat(evicted, ',')
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', a.maxlen, '*', unpack(ev))
end
return perms
`)

// Returns the session's last-seen time after the call (-1 when the session is gone).
const TOUCH = defineScript(`
local r = redis.call('HMGET', KEYS[1], 'l', 'x')
if not r[1] then return -1 end
local now = tonumber(ARGV[1])
if now - tonumber(r[1]) < tonumber(ARGV[3]) then return tonumber(r[1]) end
redis.call('HSET', KEYS[1], 'l', ARGV[1])
redis.call('PEXPIRE', KEYS[1], string.format('%d', math.max(1, math.min(tonumber(ARGV[2]), tonumber(r[2]) - now))))
return now
`)

const DELETE = defineScript(`
local n = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if n == 1 then redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3)) end
return n
`)

// KEYS: user index, events, outbox marker (or the index again when there is none).
const REVOKE_USER = defineScript(`
local a = cjson.decode(ARGV[1])
if a.marker and not redis.call('SET', KEYS[3], '1', 'NX', 'PX', string.format('%d', a.markerTtl)) then return -1 end
local ended = {}
for _, h in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if h ~= a.except then
    if redis.call('DEL', a.prefix .. h) == 1 then ended[#ended + 1] = h end
    redis.call('ZREM', KEYS[1], h)
  end
end
if #ended > 0 or a.always then
  local ev = a.event
  if #ended > 0 then
    ev[#ev + 1] = a.hashField
    ev[#ev + 1] = table.concat(ended, ',')
  end
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', a.maxlen, '*', unpack(ev))
end
return #ended
`)

// KEYS: user index, user permissions, events, outbox marker.
const SET_PERMISSIONS = defineScript(`
local a = cjson.decode(ARGV[1])
if not redis.call('SET', KEYS[4], '1', 'NX', 'PX', string.format('%d', a.markerTtl)) then return -1 end
local applied = 0
local stored = redis.call('HGET', KEYS[2], 'v')
-- Versions come from PostgreSQL; an older set arriving late (a retried relay) must not roll back.
if (not stored) or tonumber(stored) < a.version then
  redis.call('HSET', KEYS[2], 'v', string.format('%d', a.version), 'p', a.perms)
  redis.call('PEXPIRE', KEYS[2], string.format('%d', a.permsTtl))
  for _, h in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    local key = a.prefix .. h
    if redis.call('EXISTS', key) == 1 then redis.call('HSET', key, 'p', a.perms) else redis.call('ZREM', KEYS[1], h) end
  end
  applied = 1
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', a.maxlen, '*', unpack(a.event))
return applied
`)

/** How long an outbox marker is kept: far longer than any relay retry could take. */
const OUTBOX_MARKER_TTL_MS = 7 * 86_400_000

function permsTtl(store: SessionStore): number {
  // The per-user permission version must outlive every session that could still be refreshed.
  return store.absoluteTimeoutMs + 3_600_000
}

function withTime(event: EventInput, now: number): string[] {
  return encodeEvent({ ...event, at: now } as AuthEvent)
}

export interface NewSession {
  user: { id: number; username: string; permissions: readonly string[]; permissionsVersion: number }
  ip: string
  userAgent: string
  now: number
  event: EventInput
}

/** Creates a session with a fresh token; returns the token (for the cookie) and the stored record. */
export async function createSession(
  store: SessionStore,
  input: NewSession,
): Promise<{ token: string; session: Session }> {
  const token = generateToken()
  const tokenHash = await hashToken(token)
  const { user, now } = input
  const userAgent = sanitizeUserAgent(input.userAgent)
  const expiresAt = now + store.absoluteTimeoutMs
  const session: Session = {
    tokenHash,
    publicId: generatePublicId(),
    userId: user.id,
    username: user.username,
    permissions: [...user.permissions],
    createdAt: now,
    lastSeenAt: now,
    expiresAt,
    ip: input.ip,
    userAgent,
  }
  const fields = [
    'id',
    session.publicId,
    'u',
    String(user.id),
    'n',
    user.username,
    'c',
    int(now),
    'l',
    int(now),
    'x',
    int(expiresAt),
    'ip',
    input.ip,
    ...userAgentFields(userAgent),
  ]
  const args = {
    now,
    prefix: store.keys.sessionPrefix,
    hash: tokenHash,
    idle: store.idleTimeoutMs,
    expires: expiresAt,
    max: store.maxSessionsPerUser,
    maxlen: String(store.streamMaxLen),
    version: user.permissionsVersion,
    perms: user.permissions.join(','),
    permsTtl: permsTtl(store),
    fields,
    event: withTime({ ...input.event, sessionHash: tokenHash } as EventInput, now),
    evictEvent: withTime(
      {
        type: 'session_revoked',
        reason: 'session_limit',
        instance: input.event.instance,
        actorId: 0,
        subjectId: user.id,
      },
      now,
    ),
    hashField: SESSION_HASH_FIELD,
  }
  const perms = (await runScript(
    store.redis,
    CREATE,
    [
      store.keys.session(tokenHash),
      store.keys.userSessions(user.id),
      store.keys.userPermissions(user.id),
      store.keys.events,
    ],
    [JSON.stringify(args)],
  )) as string
  session.permissions = perms ? perms.split(',') : []
  return { token, session }
}

/** Parses an HGETALL reply; undefined when the key is missing or the record is malformed. */
export function parseSession(tokenHash: string, raw: Record<string, string>): Session | undefined {
  const userId = Number(raw.u)
  const expiresAt = Number(raw.x)
  const lastSeenAt = Number(raw.l)
  if (!raw.u || !Number.isSafeInteger(userId) || !Number.isFinite(expiresAt) || !Number.isFinite(lastSeenAt)) {
    return undefined
  }
  return {
    tokenHash,
    publicId: raw.id ?? '',
    userId,
    username: raw.n ?? '',
    permissions: raw.p ? raw.p.split(',') : [],
    createdAt: Number(raw.c),
    lastSeenAt,
    expiresAt,
    ip: raw.ip ?? '',
    userAgent: UA_FIELDS.map((f) => raw[f] ?? '').join(''),
  }
}

/** Reads a session by token hash. Expiry is not checked here: see isSessionLive. */
export async function readSession(store: SessionStore, tokenHash: string): Promise<Session | undefined> {
  const raw = await store.redis.hgetall(store.keys.session(tokenHash))
  return parseSession(tokenHash, raw)
}

/**
 * Both limits are enforced on read, not only by the key's TTL: the TTL is refreshed at most once
 * per touch interval, and a cached copy must never outlive what Redis would allow.
 */
export function isSessionLive(session: Session, now: number, idleTimeoutMs: number): boolean {
  return now < session.expiresAt && now - session.lastSeenAt < idleTimeoutMs
}

/** True when the session's last-seen time is old enough to be written back. */
export function needsTouch(store: SessionStore, session: Session, now: number): boolean {
  return now - session.lastSeenAt >= store.touchIntervalMs
}

/**
 * Records activity: last-seen time and a fresh idle TTL, never past the absolute expiry. Another
 * instance may have touched it moments ago, in which case nothing is written. Returns the stored
 * last-seen time afterwards, or undefined when the session no longer exists.
 */
export async function touchSession(store: SessionStore, tokenHash: string, now: number): Promise<number | undefined> {
  const result = (await runScript(
    store.redis,
    TOUCH,
    [store.keys.session(tokenHash)],
    [int(now), int(store.idleTimeoutMs), int(store.touchIntervalMs)],
  )) as number
  return result < 0 ? undefined : result
}

/** Ends one session and announces it; false when it had already ended. */
export async function deleteSession(
  store: SessionStore,
  session: Pick<Session, 'tokenHash' | 'userId'>,
  event: EventInput,
  now: number,
): Promise<boolean> {
  const result = await runScript(
    store.redis,
    DELETE,
    [store.keys.session(session.tokenHash), store.keys.userSessions(session.userId), store.keys.events],
    [
      session.tokenHash,
      String(store.streamMaxLen),
      ...withTime({ ...event, sessionHash: session.tokenHash } as EventInput, now),
    ],
  )
  return result === 1
}

export interface RevokeUserSessions {
  userId: number
  /** Keep this session (the caller's own) alive. */
  exceptTokenHash?: string
  event: EventInput
  now: number
  /** Emit the event even when no session was live (e.g. a user disabled while logged out). */
  always?: boolean
  /** Makes a retried outbox relay a no-op. */
  outboxId?: number
}

/** Ends every session of one user (but `exceptTokenHash`); returns how many ended, -1 if already applied. */
export async function revokeUserSessions(store: SessionStore, input: RevokeUserSessions): Promise<number> {
  const keys = store.keys
  const marker = input.outboxId === undefined ? undefined : keys.outboxApplied(input.outboxId)
  const args = {
    prefix: keys.sessionPrefix,
    except: input.exceptTokenHash ?? '',
    maxlen: String(store.streamMaxLen),
    event: withTime(input.event, input.now),
    hashField: SESSION_HASH_FIELD,
    always: input.always ?? false,
    marker: marker !== undefined,
    markerTtl: OUTBOX_MARKER_TTL_MS,
  }
  const userIndex = keys.userSessions(input.userId)
  return (await runScript(
    store.redis,
    REVOKE_USER,
    [userIndex, keys.events, marker ?? userIndex],
    [JSON.stringify(args)],
  )) as number
}

export interface SetUserPermissions {
  userId: number
  version: number
  permissions: readonly string[]
  outboxId: number
  event: EventInput
  now: number
}

/**
 * Rewrites the permissions of every live session of one user, unless a newer version is already
 * there; announces the change exactly once per outbox row. Returns 1 applied, 0 stale, -1 replayed.
 */
export async function setUserPermissions(store: SessionStore, input: SetUserPermissions): Promise<number> {
  const keys = store.keys
  const args = {
    prefix: keys.sessionPrefix,
    version: input.version,
    perms: input.permissions.join(','),
    permsTtl: permsTtl(store),
    maxlen: String(store.streamMaxLen),
    markerTtl: OUTBOX_MARKER_TTL_MS,
    event: withTime(input.event, input.now),
  }
  return (await runScript(
    store.redis,
    SET_PERMISSIONS,
    [
      keys.userSessions(input.userId),
      keys.userPermissions(input.userId),
      keys.events,
      keys.outboxApplied(input.outboxId),
    ],
    [JSON.stringify(args)],
  )) as number
}

const APPEND_ONCE = defineScript(`
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then return 0 end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
return 1
`)

/** Appends an event that changes nothing else in Redis (e.g. a failed login). */
export async function appendEvent(store: SessionStore, event: EventInput, now: number): Promise<void> {
  await store.redis.xadd(store.keys.events, 'MAXLEN', '~', String(store.streamMaxLen), '*', ...withTime(event, now))
}

/** Appends an event relayed from the outbox, once per outbox row however often the relay retries. */
export async function appendEventOnce(
  store: SessionStore,
  event: EventInput,
  now: number,
  outboxId: number,
): Promise<void> {
  await runScript(
    store.redis,
    APPEND_ONCE,
    [store.keys.events, store.keys.outboxApplied(outboxId)],
    [int(OUTBOX_MARKER_TTL_MS), String(store.streamMaxLen), ...withTime(event, now)],
  )
}

/** The user's live sessions, newest first; entries whose key expired are skipped. */
export async function listUserSessions(store: SessionStore, userId: number, now: number): Promise<Session[]> {
  const hashes = await store.redis.zrangebyscore(store.keys.userSessions(userId), `(${int(now)}`, '+inf')
  if (hashes.length === 0) return []
  const pipeline = store.redis.pipeline()
  for (const hash of hashes) pipeline.hgetall(store.keys.session(hash))
  const replies = (await pipeline.exec()) ?? []
  const sessions: Session[] = []
  replies.forEach(([error, raw], i) => {
    if (error) throw error
    const session = parseSession(hashes[i] as string, raw as Record<string, string>)
    if (session && isSessionLive(session, now, store.idleTimeoutMs)) sessions.push(session)
  })
  return sessions.sort((a, b) => b.createdAt - a.createdAt)
}

// --- Session management: ending sessions by public id, rotating a token, ending everyone's. ---

// KEYS: user index, events. The public id is found among this user's sessions only, so nobody can
// end another user's session by guessing or copying its id.
const DELETE_BY_PUBLIC_ID = defineScript(`
local a = cjson.decode(ARGV[1])
for _, h in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = a.prefix .. h
  if redis.call('HGET', key, 'id') == a.publicId then
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[1], h)
    local ev = a.event
    ev[#ev + 1] = a.hashField
    ev[#ev + 1] = h
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', a.maxlen, '*', unpack(ev))
    return h
  end
end
return false
`)

/**
 * Ends the session of `userId` whose public id is `publicId`, with its event, in one step. Returns
 * the ended session's token hash (to tell whether it was the caller's own), or undefined.
 */
export async function deleteSessionByPublicId(
  store: SessionStore,
  input: { userId: number; publicId: string; event: EventInput; now: number },
): Promise<string | undefined> {
  const args = {
    prefix: store.keys.sessionPrefix,
    publicId: input.publicId,
    maxlen: String(store.streamMaxLen),
    event: withTime(input.event, input.now),
    hashField: SESSION_HASH_FIELD,
  }
  const result = await runScript(
    store.redis,
    DELETE_BY_PUBLIC_ID,
    [store.keys.userSessions(input.userId), store.keys.events],
    [JSON.stringify(args)],
  )
  return typeof result === 'string' ? result : undefined
}

// KEYS: old session, new session, user index, events. The record moves to the new token's key
// unchanged but for last-seen; the old key is gone in the same step, so no moment has both or none.
const ROTATE = defineScript(`
local a = cjson.decode(ARGV[1])
local fields = redis.call('HGETALL', KEYS[1])
if #fields == 0 then return 0 end
local expires
for i = 1, #fields, 2 do
  if fields[i] == 'x' then expires = tonumber(fields[i + 1]) end
end
if not expires or expires <= a.now then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], a.oldHash)
redis.call('HSET', KEYS[2], unpack(fields))
redis.call('HSET', KEYS[2], 'l', string.format('%d', a.now))
redis.call('PEXPIRE', KEYS[2], string.format('%d', math.max(1, math.min(a.idle, expires - a.now))))
redis.call('ZADD', KEYS[3], string.format('%d', expires), a.newHash)
if redis.call('PTTL', KEYS[3]) < 0 then redis.call('PEXPIREAT', KEYS[3], string.format('%d', expires)) end
local ev = a.event
ev[#ev + 1] = a.hashField
ev[#ev + 1] = a.oldHash
redis.call('XADD', KEYS[4], 'MAXLEN', '~', a.maxlen, '*', unpack(ev))
return 1
`)

/**
 * Moves a live session to a new token (e.g. after a password change): same public id, permissions
 * and absolute expiry, which a rotation must never extend. The old token is dead from this step
 * on. Returns false when the session had already ended.
 */
export async function rotateSession(
  store: SessionStore,
  input: { session: Pick<Session, 'tokenHash' | 'userId'>; newTokenHash: string; event: EventInput; now: number },
): Promise<boolean> {
  const { session, newTokenHash, now } = input
  const args = {
    now,
    idle: store.idleTimeoutMs,
    oldHash: session.tokenHash,
    newHash: newTokenHash,
    maxlen: String(store.streamMaxLen),
    event: withTime(input.event, now),
    hashField: SESSION_HASH_FIELD,
  }
  const result = await runScript(
    store.redis,
    ROTATE,
    [
      store.keys.session(session.tokenHash),
      store.keys.session(newTokenHash),
      store.keys.userSessions(session.userId),
      store.keys.events,
    ],
    [JSON.stringify(args)],
  )
  return result === 1
}

export interface RevokeEverySession {
  /** Who ends them, and from where; recorded in each event. */
  event: Omit<EventInput<Extract<AuthEvent, { type: 'all_sessions_revoked' }>>, 'type'>
  /** Keep this session (the caller's own) alive. */
  exceptTokenHash?: string
  now: number
}

/**
 * Ends every session of every user: one atomic step per user (found by SCAN over the per-user
 * indexes, so no session key is ever enumerated), each with its own event naming the sessions it
 * ended, then one `all_sessions_revoked` event. A login that lands while the sweep runs may survive
 * it; it was made after the decision, with a valid password.
 */
export async function revokeEverySession(
  store: SessionStore,
  input: RevokeEverySession,
): Promise<{ users: number; sessions: number }> {
  let cursor = '0'
  let users = 0
  let sessions = 0
  do {
    const [next, keys] = await store.redis.scan(cursor, 'MATCH', store.keys.allUserSessions, 'COUNT', 500)
    cursor = next
    for (const key of keys) {
      const userId = store.keys.userIdOfSessions(key)
      if (userId === undefined) continue
      const ended = await revokeUserSessions(store, {
        userId,
        exceptTokenHash: input.exceptTokenHash,
        event: { ...input.event, type: 'user_sessions_revoked', subjectId: userId },
        now: input.now,
      })
      // SCAN may return a key twice; the second pass ends nothing and is not counted.
      if (ended > 0) {
        users++
        sessions += ended
      }
    }
  } while (cursor !== '0')
  await appendEvent(store, { ...input.event, type: 'all_sessions_revoked' }, input.now)
  return { users, sessions }
}
