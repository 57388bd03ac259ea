// Session management beyond login and logout: ending a session by its public id, moving a session
// to a new token, and ending everyone's sessions. Each step is one Lua script with its event.

import type { AuthEvent } from '../../redis/events'
import { SESSION_HASH_FIELD } from '../../redis/events'
import { defineScript, runScript } from '../../redis/script'
import { PART, publicIdFor, type Session } from './record'
import {
  appendEvent,
  deleteSession,
  type EventInput,
  LUA_PRELUDE,
  revokeUserSessions,
  type SessionStore,
  userSessionHashes,
  withTime,
} from './store'

/**
 * Ends the session of `userId` whose public id is `publicId`, with its event. The id is looked for
 * among this user's sessions only, so nobody can end another user's session by guessing or copying
 * its id. Returns the ended session's token hash (to tell whether it was the caller's), or undefined.
 */
export async function deleteSessionByPublicId(
  store: SessionStore,
  input: { userId: number; publicId: string; event: EventInput; now: number },
): Promise<string | undefined> {
  const hashes = await userSessionHashes(store, input.userId)
  const tokenHash = hashes.find((hash) => publicIdFor(hash) === input.publicId)
  if (!tokenHash) return undefined
  const ended = await deleteSession(store, { tokenHash, userId: input.userId }, input.event, input.now)
  return ended ? tokenHash : undefined
}

// KEYS: old session, new session, user, events. The record moves to the new token's key unchanged
// but for last-seen; the old key is gone in the same step, so no moment has both or neither.
const ROTATE = defineScript(`${LUA_PRELUDE}
local a = cjson.decode(ARGV[1])
local value = redis.call('GET', KEYS[1])
if not value then return 0 end
local t = split(value)
local expires = tonumber(t[${PART.expires}], 36)
if expires <= a.now then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[3], a.oldHash)
t[${PART.lastSeenBack}] = b36(expires - a.now)
-- A password change proves the password: the rotated session is fresh.
t[${PART.authenticatedBack}] = b36(expires - a.now)
redis.call('SET', KEYS[2], table.concat(t, '|'), 'PX', ms(math.max(1, math.min(a.idle, expires - a.now))))
redis.call('HSET', KEYS[3], a.newHash, '')
extend(KEYS[3], expires - a.now)
local ev = a.event
ev[#ev + 1] = a.hashField
ev[#ev + 1] = a.oldHash
redis.call('XADD', KEYS[4], 'MAXLEN', '~', a.maxlen, '*', unpack(ev))
return 1
`)

/**
 * Moves a live session to a new token (e.g. after a password change): same permissions and
 * absolute expiry, which a rotation must never extend; a new public id, since that derives from the
 * token. The old token is dead from this step on. Returns false when the session had already ended.
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
