// A user's own sessions: GET /sessions, DELETE /sessions/:id, DELETE /sessions[?all=true].

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { createHash } from 'node:crypto'
import type { SessionView } from '../src/modules/sessions/service'
import { decodeEvent } from '../src/store'
import {
  call,
  createTestEnv,
  expectError,
  registerUser,
  sessionTokenFrom,
  streamEntries,
  type TestEnv,
  tokenOf,
} from './helpers'

let env: TestEnv
beforeAll(async () => {
  env = await createTestEnv('my_sessions')
})
afterAll(async () => {
  await env.close()
})

const PASSWORD = 'correct horse battery'
/** The session key's hash: the first 22 base64url characters of SHA-256 (src/store/token.ts). */
const sha256 = (token: string) => createHash('sha256').update(token).digest('base64url').slice(0, 22)

async function login(username: string, userAgent: string): Promise<string> {
  const response = await call(env.app, 'POST', '/user/login', {
    body: { username, password: PASSWORD },
    headers: { 'user-agent': userAgent },
  })
  expect(response.status).toBe(200)
  const token = sessionTokenFrom(response, env.config.cookieName)
  if (!token) throw new Error('no cookie')
  return `${env.config.cookieName}=${token}`
}

async function list(cookie: string): Promise<SessionView[]> {
  const response = await call(env.app, 'GET', '/sessions', { cookie })
  expect(response.status).toBe(200)
  return ((await response.json()) as { sessions: SessionView[] }).sessions
}

const alive = async (cookie: string) => (await call(env.app, 'GET', '/user/me', { cookie })).status === 200

async function events(type: string) {
  const entries = await streamEntries(env)
  return entries.map(([, fields]) => decodeEvent(fields)).filter((e) => e?.type === type)
}

function clearsCookie(response: Response): boolean {
  return response.headers.getSetCookie().some((c) => c.startsWith(`${env.config.cookieName}=;`) && /Max-Age=0/i.test(c))
}

describe('GET /sessions', () => {
  test('401 without a session', async () => {
    await expectError(await call(env.app, 'GET', '/sessions'), 401, 'unauthenticated')
  })

  test("lists the caller's live sessions, marks the current one, and never shows a token or its hash", async () => {
    await registerUser(env, 'lister', PASSWORD)
    await registerUser(env, 'lister-other', PASSWORD)
    const first = await login('lister', 'Browser/One')
    env.clock.advance(1000)
    const second = await login('lister', 'Browser/Two')
    const foreign = await login('lister-other', 'Browser/Other')

    const response = await call(env.app, 'GET', '/sessions', { cookie: first })
    const text = await response.text()
    const sessions = (JSON.parse(text) as { sessions: SessionView[] }).sessions
    expect(sessions).toHaveLength(2)
    // Newest first.
    expect(sessions.map((s) => s.userAgent)).toEqual(['Browser/Two', 'Browser/One'])
    expect(sessions.map((s) => s.current)).toEqual([false, true])
    for (const s of sessions) {
      expect(Object.keys(s).sort()).toEqual([
        'createdAt',
        'current',
        'expiresAt',
        'id',
        'ip',
        'lastSeenAt',
        'userAgent',
      ])
      expect(s.id).toMatch(/^[A-Za-z0-9_-]{16}$/)
      expect(Date.parse(s.createdAt)).toBeGreaterThan(0)
      expect(Date.parse(s.lastSeenAt)).toBeGreaterThanOrEqual(Date.parse(s.createdAt))
    }
    for (const cookie of [first, second, foreign]) {
      const token = tokenOf(cookie)
      expect(text).not.toContain(token)
      expect(text).not.toContain(sha256(token))
    }
    // The other user's session is not listed.
    expect(text).not.toContain('Browser/Other')
    // The same list from the second session marks that one as current.
    expect((await list(second)).map((s) => s.current)).toEqual([true, false])
  })
})

describe('DELETE /sessions/:id', () => {
  test('401 without a session, 422 for a malformed id', async () => {
    await expectError(await call(env.app, 'DELETE', '/sessions/AAAAAAAAAAAAAAAA'), 401)
    await registerUser(env, 'malformed', PASSWORD)
    const cookie = await login('malformed', 'X')
    await expectError(await call(env.app, 'DELETE', '/sessions/not*an*id', { cookie }), 422)
  })

  test('ends one of my other sessions everywhere, with its event', async () => {
    await registerUser(env, 'ender', PASSWORD)
    const mine = await login('ender', 'A')
    const other = await login('ender', 'B')
    const target = (await list(mine)).find((s) => !s.current)
    if (!target) throw new Error('no other session')
    const response = await call(env.app, 'DELETE', `/sessions/${target.id}`, { cookie: mine })
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ ended: 1, currentEnded: false })
    expect(clearsCookie(response)).toBe(false)
    expect(await alive(other)).toBe(false)
    expect(await alive(mine)).toBe(true)
    expect((await list(mine)).map((s) => s.id)).not.toContain(target.id)
    const revoked = await events('session_revoked')
    expect(revoked.some((e) => e?.sessionHash === sha256(tokenOf(other)) && e.type === 'session_revoked')).toBe(true)
    // A second time: it is gone.
    await expectError(
      await call(env.app, 'DELETE', `/sessions/${target.id}`, { cookie: mine }),
      404,
      'session_not_found',
    )
  })

  test("404 for another user's session id, which stays alive", async () => {
    await registerUser(env, 'victim', PASSWORD)
    await registerUser(env, 'prober', PASSWORD)
    const victim = await login('victim', 'V')
    const prober = await login('prober', 'P')
    const [victimSession] = await list(victim)
    if (!victimSession) throw new Error('no session')
    await expectError(
      await call(env.app, 'DELETE', `/sessions/${victimSession.id}`, { cookie: prober }),
      404,
      'session_not_found',
    )
    expect(await alive(victim)).toBe(true)
  })

  test('ending the current session clears its cookie', async () => {
    await registerUser(env, 'self-ender', PASSWORD)
    const mine = await login('self-ender', 'S')
    const [current] = await list(mine)
    if (!current) throw new Error('no session')
    const response = await call(env.app, 'DELETE', `/sessions/${current.id}`, { cookie: mine })
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ ended: 1, currentEnded: true })
    expect(clearsCookie(response)).toBe(true)
    expect(await alive(mine)).toBe(false)
  })

  test('a cross-origin DELETE is refused by the CSRF check', async () => {
    await registerUser(env, 'csrf-target', PASSWORD)
    const mine = await login('csrf-target', 'C')
    const [current] = await list(mine)
    const response = await call(env.app, 'DELETE', `/sessions/${current?.id}`, {
      cookie: mine,
      headers: { origin: 'https://evil.example' },
    })
    await expectError(response, 403, 'cross_origin_request')
    expect(await alive(mine)).toBe(true)
  })
})

describe('DELETE /sessions', () => {
  test('401 without a session', async () => {
    await expectError(await call(env.app, 'DELETE', '/sessions'), 401)
    await expectError(await call(env.app, 'DELETE', '/sessions?all=true'), 401)
  })

  test('ends every session but the current one', async () => {
    await registerUser(env, 'others', PASSWORD)
    const mine = await login('others', 'M')
    const a = await login('others', 'A')
    const b = await login('others', 'B')
    const response = await call(env.app, 'DELETE', '/sessions', { cookie: mine })
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ ended: 2, currentEnded: false })
    expect(clearsCookie(response)).toBe(false)
    expect(await alive(a)).toBe(false)
    expect(await alive(b)).toBe(false)
    expect(await alive(mine)).toBe(true)
    expect((await list(mine)).map((s) => s.current)).toEqual([true])
    const [event] = (await events('user_sessions_revoked')).filter(
      (e) => e?.type === 'user_sessions_revoked' && e.reason === 'ended_others_by_user',
    )
    expect(event?.sessionHash?.split(',').sort()).toEqual([sha256(tokenOf(a)), sha256(tokenOf(b))].sort())
  })

  test('?all=true ends the current one too and clears the cookie', async () => {
    await registerUser(env, 'everything', PASSWORD)
    const mine = await login('everything', 'M')
    const other = await login('everything', 'O')
    const response = await call(env.app, 'DELETE', '/sessions?all=true', { cookie: mine })
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ ended: 2, currentEnded: true })
    expect(clearsCookie(response)).toBe(true)
    expect(await alive(mine)).toBe(false)
    expect(await alive(other)).toBe(false)
  })

  test('?all=false keeps the current one; a non-boolean is a 422', async () => {
    await registerUser(env, 'all-false', PASSWORD)
    const mine = await login('all-false', 'M')
    const response = await call(env.app, 'DELETE', '/sessions?all=false', { cookie: mine })
    expect(((await response.json()) as { currentEnded: boolean }).currentEnded).toBe(false)
    expect(await alive(mine)).toBe(true)
    await expectError(await call(env.app, 'DELETE', '/sessions?all=maybe', { cookie: mine }), 422)
  })
})
