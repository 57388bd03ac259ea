// Session fixation (ASVS 7.2.4): every login issues a new token, and whatever session cookie came
// with the login is ended, whoever it belonged to; garbage cookies are ignored.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { decodeEvent, hashToken } from '../src/store'
import {
  call,
  createTestEnv,
  loginAs,
  registerUser,
  sessionTokenFrom,
  streamEntries,
  type TestEnv,
  tokenOf,
} from './helpers'

let env: TestEnv
let name: string
beforeAll(async () => {
  env = await createTestEnv('fixation')
  name = env.config.cookieName
  await registerUser(env, 'alice', 'alice-password-1')
  await registerUser(env, 'bruno', 'bruno-password-1')
})
afterAll(async () => {
  await env.close()
})

async function loginSending(username: string, password: string, cookie: string) {
  const response = await call(env.app, 'POST', '/user/login', { body: { username, password }, cookie })
  expect(response.status).toBe(200)
  const token = sessionTokenFrom(response, name)
  expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/)
  return token as string
}

const me = (token: string) => call(env.app, 'GET', '/user/me', { cookie: `${name}=${token}` })

describe('session fixation', () => {
  test("logging in as A while sending B's cookie: a new token, and B's session is ended", async () => {
    const bruno = await loginAs(env, 'bruno', 'bruno-password-1')
    expect((await me(tokenOf(bruno))).status).toBe(200)

    const alice = await loginSending('alice', 'alice-password-1', bruno)
    expect(alice).not.toBe(tokenOf(bruno))
    expect((await me(tokenOf(bruno))).status).toBe(401)
    const who = await me(alice)
    expect(who.status).toBe(200)
    expect(((await who.json()) as { username: string }).username).toBe('alice')
  })

  test("logging in again with A's old cookie: a new token, and the old one is dead", async () => {
    const old = tokenOf(await loginAs(env, 'alice', 'alice-password-1'))
    const fresh = await loginSending('alice', 'alice-password-1', `${name}=${old}`)
    expect(fresh).not.toBe(old)
    expect((await me(old)).status).toBe(401)
    expect((await me(fresh)).status).toBe(200)
  })

  test('an attacker-chosen token that was never issued is not adopted', async () => {
    const planted = 'A'.repeat(43)
    const issued = await loginSending('alice', 'alice-password-1', `${name}=${planted}`)
    expect(issued).not.toBe(planted)
    expect((await me(planted)).status).toBe(401)
    expect((await me(issued)).status).toBe(200)
  })

  test('garbage and foreign cookies sent along are ignored', async () => {
    const cookies = [
      `${name}=*`,
      `${name}=not-a-token`,
      `${name}=${'x'.repeat(5000)}`,
      `${name}={"a":1}`,
      'connect.sid=s%3Aabc.def; other=1',
      `sid=${'B'.repeat(43)}; ${name}=%E0%A4%A`,
    ]
    const issued = new Set<string>()
    for (const cookie of cookies) {
      const token = await loginSending('bruno', 'bruno-password-1', cookie)
      issued.add(token)
      expect((await me(token)).status).toBe(200)
    }
    expect(issued.size).toBe(cookies.length)
  })
})

describe('a presented session that cannot be ended', () => {
  test('fails the login before a new session or a login_succeeded event exists', async () => {
    const { id } = await registerUser(env, 'fabio', 'fabio-password-1')
    const planted = 'C'.repeat(43)
    // A value of the wrong type where the planted token's session would live: ending it fails
    // inside Redis, after the password was verified and before any new session was made.
    const key = env.ctx.store.keys.session(0, hashToken(planted))
    await env.redis.hset(key, 'not', 'a session')
    try {
      const response = await call(env.app, 'POST', '/user/login', {
        body: { username: 'fabio', password: 'fabio-password-1' },
        cookie: `${name}=${planted}`,
      })
      expect(response.status).toBe(500)
      expect(sessionTokenFrom(response, name)).toBeUndefined()
      // A new user's index does not exist until a session is made.
      expect(await env.redis.exists(env.ctx.store.keys.userIndex(id))).toBe(0)
      const logins = (await streamEntries(env))
        .map(([, fields]) => decodeEvent(fields))
        .filter((e) => e?.type === 'login_succeeded' && e.subjectId === id)
      expect(logins).toHaveLength(0)
    } finally {
      await env.redis.del(key)
    }
    // Once the cookie can be ended, the same login goes through.
    expect((await me(await loginSending('fabio', 'fabio-password-1', `${name}=${planted}`))).status).toBe(200)
  })
})

// Both end a session known only by its cookie, in one Redis step that reads the owner from the record.
describe('the events of ending a session by its cookie', () => {
  const eventsFor = async (tokenHash: string) =>
    (await streamEntries(env)).map(([, fields]) => decodeEvent(fields)).filter((e) => e?.sessionHash === tokenHash)

  test("a cookie replaced at login: session_revoked, actor and subject the old session's owner", async () => {
    const { id } = await registerUser(env, 'carla', 'carla-password-1')
    const carla = await loginAs(env, 'carla', 'carla-password-1')
    await loginSending('alice', 'alice-password-1', carla)
    const events = await eventsFor(hashToken(tokenOf(carla)))
    expect(events.map((e) => e?.type)).toEqual(['login_succeeded', 'session_revoked'])
    expect(events[1]).toMatchObject({ reason: 'replaced_at_login', actorId: id, subjectId: id })
    expect(await env.redis.hkeys(env.ctx.store.keys.userIndex(id))).not.toContain(hashToken(tokenOf(carla)))
  })

  test('logout: one logout event naming the owner, client and session; the index entry goes too', async () => {
    const { id } = await registerUser(env, 'dario', 'dario-password-1')
    const dario = await loginAs(env, 'dario', 'dario-password-1')
    const out = await call(env.app, 'POST', '/user/logout', { cookie: dario, headers: { 'user-agent': 'logout-test' } })
    expect(await out.json()).toEqual({ loggedOut: true })
    const events = await eventsFor(hashToken(tokenOf(dario)))
    expect(events.map((e) => e?.type)).toEqual(['login_succeeded', 'logout'])
    expect(events[1]).toMatchObject({ actorId: id, subjectId: id, userAgent: 'logout-test' })
    expect(await env.redis.hkeys(env.ctx.store.keys.userIndex(id))).not.toContain(hashToken(tokenOf(dario)))
  })

  test('logout of an idled-out session still stored: removed, loggedOut false, no logout event', async () => {
    const { id } = await registerUser(env, 'elsa', 'elsa-password-1')
    const elsa = await loginAs(env, 'elsa', 'elsa-password-1')
    env.clock.advance(env.config.sessionIdleTimeoutMs + 1)
    const out = await call(env.app, 'POST', '/user/logout', { cookie: elsa })
    expect(await out.json()).toEqual({ loggedOut: false })
    expect(await env.redis.exists(env.ctx.store.keys.session(0, hashToken(tokenOf(elsa))))).toBe(0)
    expect((await eventsFor(hashToken(tokenOf(elsa)))).map((e) => e?.type)).toEqual(['login_succeeded'])
    expect(await env.redis.hkeys(env.ctx.store.keys.userIndex(id))).not.toContain(hashToken(tokenOf(elsa)))
  })
})
