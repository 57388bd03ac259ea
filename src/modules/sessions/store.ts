// Sessions in Redis: one packed string per session (see record.ts), named by its token's hash; a
// hash per user indexing their live sessions and holding their permission set; and every change
// written in one Lua script together with the stream event that announces it.

import type Redis from 'ioredis'
import type { BatchedGet } from '../../redis/batched-get'
import { ACTOR_FIELD, type AuthEvent, encodeEvent, SESSION_HASH_FIELD, SUBJECT_FIELD } from '../../redis/events'
import type { RedisKeys } from '../../redis/keys'
import { defineScript, runScript } from '../../redis/script'
import { type LoginLimitKeys, RELEASE_AFTER_SUCCESS_LUA } from '../auth/rate-limit'
import {
  encodePermissions,
  isSessionLive,
  PART,
  packRecord,
  parseSession,
  type Session,
  sanitizeUserAgent,
  userAgentRef,
} from './record'
import { generateToken, hashToken } from './token'

export { isSessionLive, parseSession, type Session, sanitizeUserAgent } from './record'

export interface SessionStore {
  readonly redis: Redis
  /** GET of a session record, batched with the other reads of the same event-loop turn. */
  readonly readRecord: BatchedGet
  readonly keys: RedisKeys
  readonly idleTimeoutMs: number
  readonly absoluteTimeoutMs: number
  readonly touchIntervalMs: number
  readonly maxSessionsPerUser: number
  readonly streamMaxLen: number
}

export type EventInput<E extends AuthEvent = AuthEvent> = E extends unknown ? Omit<E, 'at'> : never

const int = (n: number) => String(Math.floor(n))

/**
 * The user hash keeps its permission version at least this long, even with no session left: a
 * login that read PostgreSQL just before a grant must still find the newer version when it lands.
 */
const USER_TTL_FLOOR_MS = 3_600_000
/** How long an outbox marker is kept: far longer than any relay retry could take. */
const OUTBOX_MARKER_TTL_MS = 7 * 86_400_000

/**
 * Fields of the user hash that are not session hashes: `v` the user's version (users.permissions_version,
 * see schema.ts), `p` the permission mask at that version, and `c` the version a login must have read
 * to open a session at all (set when the account is disabled, deleted or its password changed).
 */
export const USER_META_FIELDS: ReadonlySet<string> = new Set(['v', 'p', 'c'])

// Shared Lua: records are `|`-separated (see record.ts); fields of the user hash other than the
// meta fields above are the hashes of the user's sessions, with empty values: a session's own key
// expires with it, so EXISTS is all an index entry needs.
export const LUA_PRELUDE = `
local function isMeta(f) return f == 'v' or f == 'p' or f == 'c' end
local function split(s)
  local t = {}
  for p in (s .. '|'):gmatch('([^|]*)|') do t[#t + 1] = p end
  return t
end
local function ms(n) return string.format('%d', n) end
local function b36(n)
  n = math.floor(n)
  if n <= 0 then return '0' end
  local digits, s = '0123456789abcdefghijklmnopqrstuvwxyz', ''
  while n > 0 do
    local r = n % 36
    s = digits:sub(r + 1, r + 1) .. s
    n = math.floor(n / 36)
  end
  return s
end
-- Never shortens: GT sets only a later expiry; a key without one (just created) gets it plainly.
local function extend(key, ttl)
  if redis.call('PEXPIRE', key, ms(ttl), 'GT') == 0 and redis.call('PTTL', key) == -1 then
    redis.call('PEXPIRE', key, ms(ttl))
  end
end
`
const lua = (body: string) => defineScript(LUA_PRELUDE + body)

// KEYS: session, user, user agent (or user again when there is none), events, then optionally the
// three login failure counters to give back (see rate-limit.ts). Returns the permission mask of the
// new session, or false (nil) when the account was closed after the login read it.
const CREATE = lua(`
local a = cjson.decode(ARGV[1])
local now = a.now
local live, version, storedPerms, openFrom = {}, nil, nil, nil
local flat = redis.call('HGETALL', KEYS[2])
for i = 1, #flat, 2 do
  local f, v = flat[i], flat[i + 1]
  if f == 'v' then version = tonumber(v)
  elseif f == 'p' then storedPerms = v
  elseif f == 'c' then openFrom = tonumber(v)
  -- Entries whose session ended (idled out or reached its absolute expiry) are pruned here.
  elseif redis.call('EXISTS', a.prefix .. f) == 0 then redis.call('HDEL', KEYS[2], f)
  else live[#live + 1] = f end
end
-- Disabled, deleted or given a new password after this login read the user: no session.
if openFrom and a.version < openFrom then return false end
${RELEASE_AFTER_SUCCESS_LUA(5)}
-- A permission set written by a later grant or revoke wins over the one read at login.
local perms = a.perms
local newer = version and version > a.version
if newer then perms = storedPerms end
local evicted = {}
if #live >= a.max then
  -- Over the per-user cap: the oldest sessions end.
  local aged = {}
  for _, h in ipairs(live) do
    local t = split(redis.call('GET', a.prefix .. h))
    aged[#aged + 1] = { h, tonumber(t[${PART.expires}], 36) - tonumber(t[${PART.createdBack}], 36) }
  end
  table.sort(aged, function(p, q) return p[2] < q[2] end)
  for i = 1, #aged - a.max + 1 do
    local h = aged[i][1]
    redis.call('DEL', a.prefix .. h)
    redis.call('HDEL', KEYS[2], h)
    evicted[#evicted + 1] = h
  end
end
redis.call('SET', KEYS[1], a.head .. perms .. a.tail, 'PX', ms(math.max(1, math.min(a.idle, a.expires - now))))
if newer then redis.call('HSET', KEYS[2], a.hash, '')
else redis.call('HSET', KEYS[2], a.hash, '', 'v', a.version, 'p', a.perms) end
-- The index outlives every session it lists: none expires later than the one made now.
extend(KEYS[2], a.userTtl)
if a.ua ~= '' then redis.call('SET', KEYS[3], a.ua, 'PX', ms(a.userTtl)) end
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
const TOUCH = lua(`
local value = redis.call('GET', KEYS[1])
if not value then return -1 end
local t = split(value)
local expires = tonumber(t[${PART.expires}], 36)
local last = expires - tonumber(t[${PART.lastSeenBack}], 36)
local now = tonumber(ARGV[1])
if now - last < tonumber(ARGV[3]) then return last end
t[${PART.lastSeenBack}] = b36(expires - now)
redis.call('SET', KEYS[1], table.concat(t, '|'), 'PX', ms(math.max(1, math.min(tonumber(ARGV[2]), expires - now))))
return now
`)

// KEYS: session, user, events.
const DELETE = lua(`
local n = redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if n == 1 then redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3)) end
return n
`)

// KEYS: session, events. Ends a session known only by its token's hash (logout, a cookie presented
// at login): the owner comes from the record, so reading and ending are one step. Returns the
// owner's id, or 0 when there was no live session (an expired record is removed without an event).
const END_BY_TOKEN = lua(`
local a = cjson.decode(ARGV[1])
local value = redis.call('GET', KEYS[1])
if not value then return 0 end
local t = split(value)
local uid = tonumber(t[${PART.userId}], 36)
local expires = tonumber(t[${PART.expires}], 36)
local lastSeen = expires - tonumber(t[${PART.lastSeenBack}], 36)
redis.call('DEL', KEYS[1])
redis.call('HDEL', a.userPrefix .. ms(uid), a.hash)
if a.now >= expires or a.now - lastSeen >= a.idle then return 0 end
local ev = a.event
for _, f in ipairs({ a.actorField, a.subjectField }) do
  ev[#ev + 1] = f
  ev[#ev + 1] = ms(uid)
end
ev[#ev + 1] = a.hashField
ev[#ev + 1] = a.hash
redis.call('XADD', KEYS[2], 'MAXLEN', '~', a.maxlen, '*', unpack(ev))
return uid
`)

// KEYS: user, events, outbox marker (or the user again when there is none).
const REVOKE_USER = lua(`
local a = cjson.decode(ARGV[1])
if a.marker and not redis.call('SET', KEYS[3], '1', 'NX', 'PX', ms(a.markerTtl)) then return -1 end
if a.openFrom > tonumber(redis.call('HGET', KEYS[1], 'c') or '0') then
  -- Raised, never lowered, so relays applied out of order leave the newest closure in force.
  redis.call('HSET', KEYS[1], 'c', a.openFrom)
  extend(KEYS[1], a.userTtlFloor)
end
local ended = {}
for _, h in ipairs(redis.call('HKEYS', KEYS[1])) do
  if not isMeta(h) and h ~= a.except then
    if redis.call('DEL', a.prefix .. h) == 1 then ended[#ended + 1] = h end
    redis.call('HDEL', KEYS[1], h)
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

// KEYS: user, events, outbox marker.
const SET_PERMISSIONS = lua(`
local a = cjson.decode(ARGV[1])
if not redis.call('SET', KEYS[3], '1', 'NX', 'PX', ms(a.markerTtl)) then return -1 end
local applied = 0
local stored = redis.call('HGET', KEYS[1], 'v')
-- Versions come from PostgreSQL; an older set arriving late (a retried relay) must not roll back.
if (not stored) or tonumber(stored) < a.version then
  redis.call('HSET', KEYS[1], 'v', a.version, 'p', a.perms)
  extend(KEYS[1], a.userTtlFloor)
  for _, h in ipairs(redis.call('HKEYS', KEYS[1])) do
    if not isMeta(h) then
      local key = a.prefix .. h
      local value = redis.call('GET', key)
      if value then
        local t = split(value)
        t[${PART.permissions}] = a.perms
        redis.call('SET', key, table.concat(t, '|'), 'KEEPTTL')
      else
        redis.call('HDEL', KEYS[1], h)
      end
    end
  end
  applied = 1
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', a.maxlen, '*', unpack(a.event))
return applied
`)

// KEYS: session, events. Records a new proof of password on a live session (records of the format
// before re-authentication get the part appended), with its event. Returns 1, or 0 when the session
// is gone or expired.
const REAUTHENTICATE = lua(`
local a = cjson.decode(ARGV[1])
local value = redis.call('GET', KEYS[1])
if not value then return 0 end
local t = split(value)
local expires = tonumber(t[${PART.expires}], 36)
if expires <= a.now then return 0 end
t[${PART.authenticatedBack}] = b36(expires - a.now)
redis.call('SET', KEYS[1], table.concat(t, '|'), 'KEEPTTL')
redis.call('XADD', KEYS[2], 'MAXLEN', '~', a.maxlen, '*', unpack(a.event))
return 1
`)

const APPEND_ONCE = lua(`
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then return 0 end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
return 1
`)

export function withTime(event: EventInput, now: number): string[] {
  return encodeEvent({ ...event, at: now } as AuthEvent)
}

export interface NewSession {
  /** As read from PostgreSQL; the version tells a stale read (see AccountClosedError). */
  user: { id: number; username: string; permissions: readonly string[]; permissionsVersion: number }
  ip: string
  userAgent: string
  now: number
  event: EventInput
  /** Login failure counters to give back in the same step (loginLimitKeys in rate-limit.ts). */
  releaseLimits?: LoginLimitKeys
}

/**
 * The account was disabled, deleted or given a new password after the login read it from
 * PostgreSQL (the user hash holds a newer `c` than the version read): no session was created.
 */
export class AccountClosedError extends Error {
  constructor() {
    super('account closed since it was read')
    this.name = 'AccountClosedError'
  }
}

/**
 * Creates a session with a fresh token; returns the token (for the cookie) and the stored record.
 * Throws AccountClosedError when a disable, delete or password change overtook the login.
 */
export async function createSession(
  store: SessionStore,
  input: NewSession,
): Promise<{ token: string; session: Session }> {
  const token = generateToken()
  const tokenHash = hashToken(token)
  const { user, now, ip } = input
  const userAgent = sanitizeUserAgent(input.userAgent)
  const uaRef = userAgentRef(userAgent)
  const expiresAt = now + store.absoluteTimeoutMs
  // A login proves the password: the session starts fresh.
  const record = {
    userId: user.id,
    username: user.username,
    createdAt: now,
    lastSeenAt: now,
    authenticatedAt: now,
    expiresAt,
    ip,
  }
  const { head, tail } = packRecord({ ...record, userAgentRef: uaRef })
  const userKey = store.keys.userSessions(user.id)
  const args = {
    now,
    prefix: store.keys.sessionPrefix,
    hash: tokenHash,
    idle: store.idleTimeoutMs,
    expires: expiresAt,
    max: store.maxSessionsPerUser,
    maxlen: String(store.streamMaxLen),
    version: user.permissionsVersion,
    perms: encodePermissions(user.permissions),
    head,
    tail,
    ua: userAgent,
    // The index and a shared user agent live as long as the longest session that may point at them.
    userTtl: Math.max(store.absoluteTimeoutMs, USER_TTL_FLOOR_MS),
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
  const keys = [
    store.keys.session(tokenHash),
    userKey,
    uaRef ? store.keys.userAgent(uaRef) : userKey,
    store.keys.events,
    ...(input.releaseLimits ?? []),
  ]
  const mask = (await runScript(store.redis, CREATE, keys, [JSON.stringify(args)])) as string | null
  if (mask === null) throw new AccountClosedError()
  const session = parseSession(tokenHash, `${head}${mask}${tail}`)
  if (!session) throw new Error('created session could not be read back')
  session.userAgent = userAgent
  return { token, session }
}

/** Reads a session by token hash. Expiry is not checked here: see isSessionLive. */
export function readSession(store: SessionStore, tokenHash: string): Promise<Session | undefined> {
  return store.readRecord(store.keys.session(tokenHash)).then((value) => parseSession(tokenHash, value))
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

/**
 * Ends the session of a token hash whoever owns it, with an event whose actor and subject are the
 * owner (a logout, or a cookie replaced at login). Returns the owner's id, or undefined when no
 * live session had that hash.
 */
export async function endSessionByHash(
  store: SessionStore,
  tokenHash: string,
  event: OwnerEvent,
  now: number,
): Promise<number | undefined> {
  const args = {
    hash: tokenHash,
    now,
    idle: store.idleTimeoutMs,
    userPrefix: store.keys.userSessionsPrefix,
    maxlen: String(store.streamMaxLen),
    // Actor and subject are the owner, appended by the script once the record names them.
    event: withTime({ ...event, actorId: undefined, subjectId: undefined } as unknown as EventInput, now),
    actorField: ACTOR_FIELD,
    subjectField: SUBJECT_FIELD,
    hashField: SESSION_HASH_FIELD,
  }
  const owner = (await runScript(
    store.redis,
    END_BY_TOKEN,
    [store.keys.session(tokenHash), store.keys.events],
    [JSON.stringify(args)],
  )) as number
  return owner > 0 ? owner : undefined
}

/** An event ended by its owner or about its owner: the script fills in actor, subject and session. */
export type OwnerEvent =
  | Omit<Extract<EventInput, { type: 'logout' }>, 'actorId' | 'subjectId' | 'sessionHash'>
  | Omit<Extract<EventInput, { type: 'session_revoked' }>, 'actorId' | 'subjectId' | 'sessionHash'>

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
  /**
   * The user's version after the change (disable, delete, password): a login that read an older
   * one can no longer open a session, however late its create step lands.
   */
  openFromVersion?: number
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
    openFrom: input.openFromVersion ?? 0,
    userTtlFloor: USER_TTL_FLOOR_MS,
  }
  const userKey = keys.userSessions(input.userId)
  return (await runScript(
    store.redis,
    REVOKE_USER,
    [userKey, keys.events, marker ?? userKey],
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
    perms: encodePermissions(input.permissions),
    userTtlFloor: USER_TTL_FLOOR_MS,
    maxlen: String(store.streamMaxLen),
    markerTtl: OUTBOX_MARKER_TTL_MS,
    event: withTime(input.event, input.now),
  }
  return (await runScript(
    store.redis,
    SET_PERMISSIONS,
    [keys.userSessions(input.userId), keys.events, keys.outboxApplied(input.outboxId)],
    [JSON.stringify(args)],
  )) as number
}

/** Records that a live session just proved the password again; false when it had ended. */
export async function reauthenticateSession(
  store: SessionStore,
  input: { tokenHash: string; event: EventInput; now: number },
): Promise<boolean> {
  const args = {
    now: input.now,
    maxlen: String(store.streamMaxLen),
    event: withTime({ ...input.event, sessionHash: input.tokenHash } as EventInput, input.now),
  }
  const result = await runScript(
    store.redis,
    REAUTHENTICATE,
    [store.keys.session(input.tokenHash), store.keys.events],
    [JSON.stringify(args)],
  )
  return result === 1
}

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

/** Token hashes of a user's sessions, from their index (may include ones that just ended). */
export async function userSessionHashes(store: SessionStore, userId: number): Promise<string[]> {
  const fields = await store.redis.hkeys(store.keys.userSessions(userId))
  return fields.filter((f) => !USER_META_FIELDS.has(f))
}

/** The user's live sessions with their user agents, newest first. */
export async function listUserSessions(store: SessionStore, userId: number, now: number): Promise<Session[]> {
  const hashes = await userSessionHashes(store, userId)
  if (hashes.length === 0) return []
  const values = await store.redis.mget(hashes.map((hash) => store.keys.session(hash)))
  const sessions: Session[] = []
  values.forEach((value, i) => {
    const session = parseSession(hashes[i] as string, value)
    if (session && isSessionLive(session, now, store.idleTimeoutMs)) sessions.push(session)
  })
  const refs = [...new Set(sessions.map((s) => s.userAgentRef).filter(Boolean))]
  if (refs.length > 0) {
    const agents = await store.redis.mget(refs.map((ref) => store.keys.userAgent(ref)))
    const byRef = new Map(refs.map((ref, i) => [ref, agents[i] ?? '']))
    for (const session of sessions) session.userAgent = byRef.get(session.userAgentRef) ?? ''
  }
  return sessions.sort((a, b) => b.createdAt - a.createdAt)
}
