// Sessions in Redis: one packed string per session (record.ts), named by its token's hash; a hash
// per user indexing their live sessions and holding their permission set; every change written in
// one Lua script (lua/) together with the stream event that announces it, in the user's partition.
// Plain functions taking the store first: the server, a worker and a test run them alike.

import { type BatchedGet, createBatchedGet } from './batched-get'
import type { RedisClient } from './client'
import { type AuthEvent, encodeEvent } from './events'
import { createStoreKeys, type StoreKeys } from './keys'
import {
  encodePermissions,
  isSessionLive,
  packRecord,
  parseSession,
  type Session,
  sanitizeUserAgent,
  userAgentRef,
} from './record'
import { defineScripts, runScript } from './scripts'
import { generateToken, hashToken, type SessionCookie } from './token'

export interface StoreOptions {
  /** REDIS_KEY_PREFIX. */
  prefix: string
  /** How many partitions users are spread over (1 with a single Redis). */
  partitions: number
  idleTimeoutMs: number
  absoluteTimeoutMs: number
  /** How often, at most, a session's last-seen time and idle TTL are written back. */
  touchIntervalMs: number
  maxSessionsPerUser: number
  /** Approximate length each partition's stream is trimmed to. */
  streamMaxLen: number
}

export interface SessionStore extends Readonly<StoreOptions> {
  readonly redis: RedisClient
  readonly keys: StoreKeys
  /** GET of a session record, batched with the other reads of the same event-loop turn. */
  readonly readRecord: BatchedGet
}

export function createSessionStore(redis: RedisClient, options: StoreOptions): SessionStore {
  defineScripts(redis)
  return Object.freeze({
    ...options,
    redis,
    keys: createStoreKeys(options.prefix, options.partitions),
    readRecord: createBatchedGet(redis),
  })
}

/** An event as callers give it: the store stamps the time. */
export type EventInput<E extends AuthEvent = AuthEvent> = E extends unknown ? Omit<E, 'at'> : never

const int = (n: number) => String(Math.floor(n))

/**
 * The user hash keeps its permission version at least this long, even with no session left: a
 * login that read PostgreSQL just before a grant must still find the newer version when it lands.
 */
const USER_TTL_FLOOR_MS = 3_600_000
/** How long an outbox marker is kept: far longer than any relay retry could take. */
const OUTBOX_MARKER_TTL_MS = 7 * 86_400_000
/** A script that found the index changed since it was read is run again, this many times at most. */
const INDEX_RETRIES = 8

/**
 * Fields of the user hash that are not session hashes: `v` the user's version (users.permissions_version,
 * see schema.ts), `p` the permission mask at that version, and `c` the version a login must have read
 * to open a session at all (set when the account is disabled, deleted or its password changed).
 */
export const USER_META_FIELDS: ReadonlySet<string> = new Set(['v', 'p', 'c'])

/** The encoded fields of an event at a time, as every script appends them. */
export function eventFields(event: EventInput, now: number): string[] {
  return encodeEvent({ ...event, at: now } as AuthEvent)
}

/** The stream an event belongs in: its subject's partition (0 when it has none). */
export function eventStream(store: SessionStore, subjectId: number): string {
  return store.keys.events(store.keys.partitionOfUser(subjectId))
}

/** Token hashes of a user's sessions, from their index (may include ones that just ended). */
export async function userSessionHashes(store: SessionStore, userId: number): Promise<string[]> {
  const fields = await store.redis.hkeys(store.keys.userIndex(userId))
  return fields.filter((f) => !USER_META_FIELDS.has(f))
}

/**
 * Runs a script that walks a user's sessions: they are read from the index and passed as KEYS (so
 * Cluster routes the call and the script touches nothing undeclared); a script that finds the index
 * changed meanwhile (a login or logout in between) answers -2 and runs again on a fresh read.
 */
async function withUserSessions<T>(
  store: SessionStore,
  userId: number,
  run: (hashes: string[], sessionKeys: string[]) => Promise<T | -2>,
): Promise<T> {
  const partition = store.keys.partitionOfUser(userId)
  for (let attempt = 0; attempt < INDEX_RETRIES; attempt++) {
    const hashes = await userSessionHashes(store, userId)
    const result = await run(
      hashes,
      hashes.map((hash) => store.keys.session(partition, hash)),
    )
    if (result !== -2) return result
  }
  // Only a storm of logins and logouts of one user gets here: an outage-like "retry shortly" (503).
  throw new Error(`the session index of user ${userId} kept changing`)
}

export interface NewSession {
  /** As read from PostgreSQL; the version tells a stale read (see AccountClosedError). */
  user: { id: number; username: string; permissions: readonly string[]; permissionsVersion: number }
  ip: string
  userAgent: string
  now: number
  /** The `login_succeeded` event, without the new session's hash (the store adds it). */
  event: EventInput
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
 * Creates a session with a fresh token; returns the cookie's parts (partition and token) and the
 * stored record. Beyond the per-user cap, the oldest sessions end in the same step, announced.
 * Throws AccountClosedError when a disable, delete or password change overtook the login.
 */
export async function createSession(
  store: SessionStore,
  input: NewSession,
): Promise<{ cookie: SessionCookie; session: Session }> {
  const { keys } = store
  const token = generateToken()
  const tokenHash = hashToken(token)
  const { user, now, ip } = input
  const partition = keys.partitionOfUser(user.id)
  const userAgent = sanitizeUserAgent(input.userAgent)
  const uaRef = userAgentRef(userAgent)
  const expiresAt = now + store.absoluteTimeoutMs
  // A login proves the password: the session starts fresh.
  const record = { userId: user.id, username: user.username, createdAt: now, lastSeenAt: now, expiresAt, ip }
  const { head, tail } = packRecord({ ...record, authenticatedAt: now, userAgentRef: uaRef })
  const indexKey = keys.userIndex(user.id)
  // The index and a shared user agent live as long as the longest session that may point at them.
  const userTtl = Math.max(store.absoluteTimeoutMs, USER_TTL_FLOOR_MS)

  const result = await withUserSessions(store, user.id, async (hashes, sessionKeys) => {
    // Over the per-user cap, the oldest sessions end: their ages are read with the index.
    const values = sessionKeys.length > 0 ? await store.redis.mget(...sessionKeys) : []
    const live = hashes
      .map((hash, i) => ({ hash, session: parseSession(partition, hash, values[i]) }))
      .filter((entry): entry is { hash: string; session: Session } => entry.session !== undefined)
      .sort((a, b) => a.session.createdAt - b.session.createdAt)
    const evict = live.slice(0, Math.max(0, live.length - store.maxSessionsPerUser + 1)).map((entry) => entry.hash)
    const args = {
      now,
      hash: tokenHash,
      idle: store.idleTimeoutMs,
      expires: expiresAt,
      version: user.permissionsVersion,
      perms: encodePermissions(user.permissions),
      head,
      tail,
      ua: userAgent,
      userTtl,
      maxlen: String(store.streamMaxLen),
      event: eventFields({ ...input.event, sessionHash: tokenHash } as EventInput, now),
      hashes,
      evict,
      evictEvent:
        evict.length > 0 &&
        eventFields(
          {
            type: 'session_revoked',
            reason: 'session_limit',
            instance: input.event.instance,
            actorId: 0,
            subjectId: user.id,
            sessionHash: evict.join(','),
          },
          now,
        ),
    }
    const scriptKeys = [
      keys.session(partition, tokenHash),
      indexKey,
      uaRef ? keys.userAgent(partition, uaRef) : indexKey,
      keys.events(partition),
      ...sessionKeys,
    ]
    return (await runScript(store.redis, 'create', scriptKeys, [JSON.stringify(args)])) as string | null | -2
  })
  if (result === null) throw new AccountClosedError()
  const session = parseSession(partition, tokenHash, `${head}${result}${tail}`)
  if (!session) throw new Error('created session could not be read back')
  session.userAgent = userAgent
  return { cookie: { partition, token }, session }
}

/** Reads a session by its cookie's partition and token hash. Expiry is not checked here: see isSessionLive. */
export function readSession(store: SessionStore, partition: number, tokenHash: string): Promise<Session | undefined> {
  return store
    .readRecord(store.keys.session(partition, tokenHash))
    .then((value) => parseSession(partition, tokenHash, value))
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
export async function touchSession(
  store: SessionStore,
  session: Pick<Session, 'partition' | 'tokenHash'>,
  now: number,
): Promise<number | undefined> {
  const result = (await runScript(
    store.redis,
    'touch',
    [store.keys.session(session.partition, session.tokenHash)],
    [int(now), int(store.idleTimeoutMs), int(store.touchIntervalMs)],
  )) as number
  return result < 0 ? undefined : result
}

/** Ends one session and announces it; false when it had already ended. */
export async function deleteSession(
  store: SessionStore,
  session: Pick<Session, 'partition' | 'tokenHash' | 'userId'>,
  event: EventInput,
  now: number,
): Promise<boolean> {
  const result = await runScript(
    store.redis,
    'delete',
    [
      store.keys.session(session.partition, session.tokenHash),
      store.keys.userIndex(session.userId),
      eventStream(store, session.userId),
    ],
    [
      session.tokenHash,
      String(store.streamMaxLen),
      ...eventFields({ ...event, sessionHash: session.tokenHash } as EventInput, now),
    ],
  )
  return result === 1
}

/** An event ended by its owner or about its owner: the store fills in actor, subject and session. */
export type OwnerEvent =
  | Omit<Extract<EventInput, { type: 'logout' }>, 'actorId' | 'subjectId' | 'sessionHash'>
  | Omit<Extract<EventInput, { type: 'session_revoked' }>, 'actorId' | 'subjectId' | 'sessionHash'>

/**
 * Ends the session of a cookie whoever owns it (a logout, or a cookie replaced at login), with an
 * event whose actor and subject are the owner. The owner is read from the record first, so the
 * script knows the owner's index; it ends the session only if the record still names that owner.
 * Returns the owner's id, or undefined when no live session had that hash.
 */
export async function endSessionByHash(
  store: SessionStore,
  session: Pick<Session, 'partition' | 'tokenHash'>,
  event: OwnerEvent,
  now: number,
): Promise<number | undefined> {
  const { keys } = store
  const sessionKey = keys.session(session.partition, session.tokenHash)
  for (let attempt = 0; attempt < INDEX_RETRIES; attempt++) {
    const owner = parseSession(session.partition, session.tokenHash, await store.redis.get(sessionKey))
    if (!owner) return undefined
    const args = {
      hash: session.tokenHash,
      uid: owner.userId,
      now,
      idle: store.idleTimeoutMs,
      maxlen: String(store.streamMaxLen),
      event: eventFields(
        { ...event, actorId: owner.userId, subjectId: owner.userId, sessionHash: session.tokenHash } as EventInput,
        now,
      ),
    }
    const result = (await runScript(
      store.redis,
      'endByToken',
      [sessionKey, keys.userIndex(owner.userId), eventStream(store, owner.userId)],
      [JSON.stringify(args)],
    )) as number
    if (result !== -2) return result === 1 ? owner.userId : undefined
  }
  return undefined
}

export interface RevokeUserSessions {
  userId: number
  /** Keep this session (the caller's own) alive. */
  exceptTokenHash?: string
  /** The event, without the session hashes (the store names every session it ends). */
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
  const { keys } = store
  const partition = keys.partitionOfUser(input.userId)
  const indexKey = keys.userIndex(input.userId)
  const marker = input.outboxId === undefined ? undefined : keys.outboxApplied(partition, input.outboxId)
  return withUserSessions(store, input.userId, async (hashes, sessionKeys) => {
    const ending = hashes.filter((hash) => hash !== input.exceptTokenHash)
    const args = {
      hashes,
      except: input.exceptTokenHash ?? '',
      marker: marker !== undefined,
      markerTtl: OUTBOX_MARKER_TTL_MS,
      openFrom: input.openFromVersion ?? 0,
      userTtlFloor: USER_TTL_FLOOR_MS,
      always: input.always ?? false,
      maxlen: String(store.streamMaxLen),
      event: eventFields(
        { ...input.event, ...(ending.length > 0 ? { sessionHash: ending.join(',') } : {}) } as EventInput,
        input.now,
      ),
    }
    return (await runScript(
      store.redis,
      'revokeUser',
      [indexKey, keys.events(partition), marker ?? indexKey, ...sessionKeys],
      [JSON.stringify(args)],
    )) as number
  })
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
  const { keys } = store
  const partition = keys.partitionOfUser(input.userId)
  return withUserSessions(store, input.userId, async (hashes, sessionKeys) => {
    const args = {
      hashes,
      version: input.version,
      perms: encodePermissions(input.permissions),
      userTtlFloor: USER_TTL_FLOOR_MS,
      markerTtl: OUTBOX_MARKER_TTL_MS,
      maxlen: String(store.streamMaxLen),
      event: eventFields(input.event, input.now),
    }
    return (await runScript(
      store.redis,
      'setPermissions',
      [
        keys.userIndex(input.userId),
        keys.events(partition),
        keys.outboxApplied(partition, input.outboxId),
        ...sessionKeys,
      ],
      [JSON.stringify(args)],
    )) as number
  })
}

/** Records that a live session just proved the password again; false when it had ended. */
export async function reauthenticateSession(
  store: SessionStore,
  input: { session: Pick<Session, 'partition' | 'tokenHash' | 'userId'>; event: EventInput; now: number },
): Promise<boolean> {
  const { session, now } = input
  const args = {
    now,
    maxlen: String(store.streamMaxLen),
    event: eventFields({ ...input.event, sessionHash: session.tokenHash } as EventInput, now),
  }
  const result = await runScript(
    store.redis,
    'reauthenticate',
    [store.keys.session(session.partition, session.tokenHash), eventStream(store, session.userId)],
    [JSON.stringify(args)],
  )
  return result === 1
}

/** Appends an event that changes nothing else in Redis (e.g. a failed login). */
export async function appendEvent(store: SessionStore, event: EventInput, now: number): Promise<void> {
  await store.redis.xadd(
    eventStream(store, event.subjectId),
    'MAXLEN',
    '~',
    String(store.streamMaxLen),
    '*',
    ...eventFields(event, now),
  )
}

/** Appends an event relayed from the outbox, once per outbox row however often the relay retries. */
export async function appendEventOnce(
  store: SessionStore,
  event: EventInput,
  now: number,
  outboxId: number,
): Promise<void> {
  const partition = store.keys.partitionOfUser(event.subjectId)
  await runScript(
    store.redis,
    'appendOnce',
    [store.keys.events(partition), store.keys.outboxApplied(partition, outboxId)],
    [int(OUTBOX_MARKER_TTL_MS), String(store.streamMaxLen), ...eventFields(event, now)],
  )
}

/** The user's live sessions with their user agents, newest first. */
export async function listUserSessions(store: SessionStore, userId: number, now: number): Promise<Session[]> {
  const { keys } = store
  const partition = keys.partitionOfUser(userId)
  const hashes = await userSessionHashes(store, userId)
  if (hashes.length === 0) return []
  const values = await store.redis.mget(...hashes.map((hash) => keys.session(partition, hash)))
  const sessions: Session[] = []
  values.forEach((value, i) => {
    const session = parseSession(partition, hashes[i] as string, value)
    if (session && isSessionLive(session, now, store.idleTimeoutMs)) sessions.push(session)
  })
  const refs = [...new Set(sessions.map((s) => s.userAgentRef).filter(Boolean))]
  if (refs.length > 0) {
    const agents = await store.redis.mget(...refs.map((ref) => keys.userAgent(partition, ref)))
    const byRef = new Map(refs.map((ref, i) => [ref, agents[i] ?? '']))
    for (const session of sessions) session.userAgent = byRef.get(session.userAgentRef) ?? ''
  }
  return sessions.sort((a, b) => b.createdAt - a.createdAt)
}

/**
 * Refuses a key prefix that sessions were stored under with another partition count: their keys
 * and cookies would no longer lead to each other. Records the count on first use.
 */
export async function checkPartitions(store: SessionStore): Promise<void> {
  const key = store.keys.partitionsInUse
  const count = String(store.partitions)
  const previous = await store.redis.set(key, count, 'NX', 'GET')
  if (previous !== null && previous !== count) {
    throw new Error(
      `REDIS_PARTITIONS is ${count}, but the sessions under this key prefix were written with ${previous}; keep ${previous}, or end every session and delete ${key}`,
    )
  }
}
