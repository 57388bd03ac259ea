// Session management beyond login and logout: ending a session by its public id, moving a session
// to a new token, and ending everyone's sessions. Each step is one Lua script with its event.

import { scanTargets } from './client'
import type { AuthEvent } from './events'
import { publicIdFor, type Session } from './record'
import { runScript } from './scripts'
import {
  appendEvent,
  deleteSession,
  type EventInput,
  eventFields,
  eventStream,
  revokeUserSessions,
  type SessionStore,
  userSessionHashes,
} from './sessions'

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
  const partition = store.keys.partitionOfUser(input.userId)
  const ended = await deleteSession(store, { partition, tokenHash, userId: input.userId }, input.event, input.now)
  return ended ? tokenHash : undefined
}

/**
 * Moves a live session to a new token (after a password change): same permissions and absolute
 * expiry, which a rotation must never extend; a new public id, since that derives from the token;
 * and a fresh proof of password. The old token is dead from this step on. Returns false when the
 * session had already ended.
 */
export async function rotateSession(
  store: SessionStore,
  input: {
    session: Pick<Session, 'partition' | 'tokenHash' | 'userId'>
    newTokenHash: string
    event: EventInput
    now: number
  },
): Promise<boolean> {
  const { session, newTokenHash, now } = input
  const args = {
    oldHash: session.tokenHash,
    newHash: newTokenHash,
    now,
    idle: store.idleTimeoutMs,
    maxlen: String(store.streamMaxLen),
    event: eventFields({ ...input.event, sessionHash: session.tokenHash } as EventInput, now),
  }
  const result = await runScript(
    store.redis,
    'rotate',
    [
      store.keys.session(session.partition, session.tokenHash),
      store.keys.session(session.partition, newTokenHash),
      store.keys.userIndex(session.userId),
      eventStream(store, session.userId),
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
 * indexes on every master, so no session key is ever enumerated), each with its own event naming
 * the sessions it ended, then one `all_sessions_revoked` event. A login that lands while the sweep
 * runs may survive it; it was made after the decision, with a valid password.
 */
export async function revokeEverySession(
  store: SessionStore,
  input: RevokeEverySession,
): Promise<{ users: number; sessions: number }> {
  let users = 0
  let sessions = 0
  for (const server of scanTargets(store.redis)) {
    let cursor = '0'
    do {
      const [next, keys] = await server.scan(cursor, 'MATCH', store.keys.allUserIndexes, 'COUNT', 500)
      cursor = next
      for (const key of keys) {
        const userId = store.keys.userIdOfIndex(key)
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
  }
  await appendEvent(store, { ...input.event, type: 'all_sessions_revoked' }, input.now)
  return { users, sessions }
}
