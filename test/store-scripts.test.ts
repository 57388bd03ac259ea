// Conformance of every store script (src/store/lua) against real Redis: what it writes, what it
// answers, the event it appends, and that it refuses to act on a user's sessions when the index
// changed since the caller read it. A static check keeps every key a script touches in KEYS.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  AccountClosedError,
  appendEventOnce,
  connectRedis,
  createRedis,
  createSession,
  createSessionStore,
  decodeEvent,
  deleteSession,
  type EventInput,
  endSessionByHash,
  parseSession,
  type RedisClient,
  reauthenticateSession,
  revokeUserSessions,
  rotateSession,
  type SessionStore,
  setUserPermissions,
  touchSession,
} from '../src/store'
import { SCRIPT_LUA } from '../src/store/scripts'
import { deleteKeys, REDIS_URL } from './helpers'

const prefix = `test:store-scripts:${Date.now().toString(36)}:`
let redis: RedisClient
let store: SessionStore
beforeAll(async () => {
  redis = createRedis(REDIS_URL)
  await connectRedis(redis)
  store = createSessionStore(redis, {
    prefix,
    partitions: 1,
    idleTimeoutMs: 60_000,
    absoluteTimeoutMs: 3_600_000,
    touchIntervalMs: 1_000,
    maxSessionsPerUser: 3,
    streamMaxLen: 10_000,
  })
})
afterAll(async () => {
  await deleteKeys(redis as never, prefix)
  redis.disconnect()
})

const T0 = 1_800_000_000_000
let nextUser = 1
const event = (type: 'login_succeeded' | 'logout' | 'session_revoked', userId: number): EventInput =>
  (type === 'login_succeeded'
    ? { type, username: `u${userId}`, instance: 't', actorId: userId, subjectId: userId }
    : type === 'logout'
      ? { type, instance: 't', actorId: userId, subjectId: userId }
      : { type, reason: 'test', instance: 't', actorId: userId, subjectId: userId }) as EventInput

async function login(userId: number, now = T0, version = 0) {
  return createSession(store, {
    user: { id: userId, username: `u${userId}`, permissions: ['user:read'], permissionsVersion: version },
    ip: '192.0.2.1',
    userAgent: 'conformance/1.0',
    now,
    event: event('login_succeeded', userId),
  })
}

const events = async () => (await redis.xrange(store.keys.events(0), '-', '+')).map(([, fields]) => decodeEvent(fields))
const record = async (tokenHash: string) =>
  parseSession(0, tokenHash, await redis.get(store.keys.session(0, tokenHash)))

describe('every script', () => {
  test('touches only keys it is given in KEYS', () => {
    const dir = join(import.meta.dir, '../src/store/lua')
    for (const file of readdirSync(dir)) {
      const lua = readFileSync(join(dir, file), 'utf8')
      // A key built inside a script (prefix .. hash) is what Cluster routing cannot see.
      expect({ file, built: /redis\.call\('[A-Z]+', [^,)]*\.\./.test(lua) }).toEqual({ file, built: false })
      expect({ file, prefix: /\bprefix\b/.test(lua) }).toEqual({ file, prefix: false })
    }
    expect(Object.keys(SCRIPT_LUA).sort()).toEqual(
      [
        'appendOnce',
        'create',
        'delete',
        'endByToken',
        'reauthenticate',
        'revokeUser',
        'rotate',
        'setPermissions',
        'touch',
      ].sort(),
    )
  })
})

describe('create', () => {
  test('writes the record, the index with the permission set, the user agent, and the event', async () => {
    const userId = nextUser++
    const { session, cookie } = await login(userId)
    expect(cookie.partition).toBe(0)
    expect(await record(session.tokenHash)).toMatchObject({ userId, permissions: ['user:read'], authenticatedAt: T0 })
    const index = await redis.hgetall(store.keys.userIndex(userId))
    expect(index).toMatchObject({ [session.tokenHash]: '', v: '0' })
    expect(await redis.get(store.keys.userAgent(0, session.userAgentRef))).toBe('conformance/1.0')
    const last = (await events()).at(-1)
    expect(last).toMatchObject({ type: 'login_succeeded', subjectId: userId, sessionHash: session.tokenHash })
  })

  test('past the cap, ends the oldest session in the same step, announced', async () => {
    const userId = nextUser++
    const first = await login(userId, T0)
    await login(userId, T0 + 1)
    await login(userId, T0 + 2)
    const fourth = await login(userId, T0 + 3)
    expect(await record(first.session.tokenHash)).toBeUndefined()
    expect(await record(fourth.session.tokenHash)).toBeDefined()
    const evicted = (await events()).find((e) => e?.type === 'session_revoked' && e.subjectId === userId)
    expect(evicted).toMatchObject({ reason: 'session_limit', sessionHash: first.session.tokenHash })
  })

  test('refuses a login that read the user before it was closed', async () => {
    const userId = nextUser++
    await redis.hset(store.keys.userIndex(userId), 'c', '5')
    await expect(login(userId, T0, 4)).rejects.toBeInstanceOf(AccountClosedError)
    expect((await login(userId, T0, 5)).session.userId).toBe(userId)
  })

  test('answers -2 when the index changed since the caller read it', async () => {
    const userId = nextUser++
    await login(userId)
    const { runScript } = await import('../src/store/scripts')
    const index = store.keys.userIndex(userId)
    const stale = JSON.stringify({ hashes: [], evict: [], event: ['t', 'login_succeeded'] })
    expect(await runScript(redis, 'create', ['s', index, index, store.keys.events(0)], [stale])).toBe(-2)
  })
})

describe('touch', () => {
  test('writes last-seen back only once per interval, and answers -1 for a gone session', async () => {
    const { session } = await login(nextUser++)
    expect(await touchSession(store, session, T0 + 500)).toBe(T0)
    expect(await touchSession(store, session, T0 + 1_500)).toBe(T0 + 1_500)
    expect((await record(session.tokenHash))?.lastSeenAt).toBe(T0 + 1_500)
    expect(await touchSession(store, { partition: 0, tokenHash: 'gone' }, T0)).toBeUndefined()
  })
})

describe('delete and endByToken', () => {
  test('delete ends a session once, with one event', async () => {
    const { session } = await login(nextUser++)
    expect(await deleteSession(store, session, event('session_revoked', session.userId), T0)).toBe(true)
    expect(await deleteSession(store, session, event('session_revoked', session.userId), T0)).toBe(false)
    expect(await redis.hexists(store.keys.userIndex(session.userId), session.tokenHash)).toBe(0)
  })

  test('endByToken finds the owner and names it as actor and subject', async () => {
    const { session } = await login(nextUser++)
    const owner = await endSessionByHash(store, session, { type: 'logout', instance: 't' }, T0 + 10)
    expect(owner).toBe(session.userId)
    expect((await events()).at(-1)).toMatchObject({
      type: 'logout',
      actorId: session.userId,
      subjectId: session.userId,
      sessionHash: session.tokenHash,
    })
    expect(await endSessionByHash(store, session, { type: 'logout', instance: 't' }, T0 + 10)).toBeUndefined()
  })
})

describe('rotate and reauthenticate', () => {
  test('rotate moves the record to the new token, fresh, keeping the absolute expiry', async () => {
    const { session } = await login(nextUser++)
    expect(
      await rotateSession(store, {
        session,
        newTokenHash: 'newhash',
        event: event('session_revoked', session.userId),
        now: T0 + 50,
      }),
    ).toBe(true)
    expect(await record(session.tokenHash)).toBeUndefined()
    expect(await record('newhash')).toMatchObject({ expiresAt: session.expiresAt, authenticatedAt: T0 + 50 })
    expect(await redis.hexists(store.keys.userIndex(session.userId), 'newhash')).toBe(1)
  })

  test('reauthenticate records the proof, also on a record of the earlier eight-part format', async () => {
    const { session } = await login(nextUser++)
    const key = store.keys.session(0, session.tokenHash)
    const value = (await redis.get(key)) as string
    await redis.set(key, value.slice(0, value.lastIndexOf('|')), 'KEEPTTL')
    expect((await record(session.tokenHash))?.authenticatedAt).toBe(T0)
    const args = {
      session,
      event: { ...event('logout', session.userId), type: 'session_reauthenticated' } as EventInput,
    }
    expect(await reauthenticateSession(store, { ...args, now: T0 + 99 })).toBe(true)
    expect((await record(session.tokenHash))?.authenticatedAt).toBe(T0 + 99)
    expect(await reauthenticateSession(store, { ...args, session: { ...session, tokenHash: 'gone' }, now: T0 })).toBe(
      false,
    )
  })
})

describe('revokeUser, setPermissions, appendOnce', () => {
  test('revokeUser ends every session but one, closes the account to older logins, once per outbox row', async () => {
    const userId = nextUser++
    const keep = await login(userId)
    const gone = await login(userId, T0 + 1)
    const input = {
      userId,
      exceptTokenHash: keep.session.tokenHash,
      event: event('session_revoked', userId),
      now: T0,
      outboxId: 7,
      openFromVersion: 3,
    }
    expect(await revokeUserSessions(store, input)).toBe(1)
    expect(await revokeUserSessions(store, input)).toBe(-1)
    expect(await record(gone.session.tokenHash)).toBeUndefined()
    expect(await record(keep.session.tokenHash)).toBeDefined()
    expect(await redis.hget(store.keys.userIndex(userId), 'c')).toBe('3')
    expect((await events()).at(-1)).toMatchObject({ subjectId: userId, sessionHash: gone.session.tokenHash })
  })

  test('setPermissions rewrites every live session, never rolls back, once per outbox row', async () => {
    const userId = nextUser++
    const { session } = await login(userId)
    const base = { userId, permissions: ['audit:read'], event: event('session_revoked', userId), now: T0 }
    expect(await setUserPermissions(store, { ...base, version: 2, outboxId: 1 })).toBe(1)
    expect((await record(session.tokenHash))?.permissions).toEqual(['audit:read'])
    expect(await setUserPermissions(store, { ...base, version: 2, outboxId: 1 })).toBe(-1)
    expect(await setUserPermissions(store, { ...base, permissions: [], version: 1, outboxId: 2 })).toBe(0)
    expect((await record(session.tokenHash))?.permissions).toEqual(['audit:read'])
  })

  test('appendOnce appends an outbox row’s event once', async () => {
    const before = (await events()).length
    const input = event('session_revoked', 424242)
    await appendEventOnce(store, input, T0, 99)
    await appendEventOnce(store, input, T0, 99)
    expect((await events()).length).toBe(before + 1)
  })
})
