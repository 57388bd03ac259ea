// The session cookie's attributes, no-store on responses that set or clear it, and the token
// accepted from the cookie only (ASVS 3.3.1-3.3.5, 4:3.1.1; issue 2 point 8).

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import {
  ADMIN_PASSWORD,
  call,
  createAppWith,
  createTestEnv,
  loginAs,
  registerUser,
  type TestEnv,
  tokenOf,
} from './helpers'

let env: TestEnv
beforeAll(async () => {
  env = await createTestEnv('cookies')
  await registerUser(env, 'carol', 'carol-password-1')
})
afterAll(async () => {
  await env.close()
})

/** Splits one Set-Cookie header into its name, value and lower-cased attributes. */
function parseSetCookie(header: string) {
  const [pair = '', ...rest] = header.split(';').map((part) => part.trim())
  const eq = pair.indexOf('=')
  const attributes = new Map<string, string>()
  for (const part of rest) {
    const at = part.indexOf('=')
    attributes.set((at < 0 ? part : part.slice(0, at)).toLowerCase(), at < 0 ? '' : part.slice(at + 1))
  }
  return { name: pair.slice(0, eq), value: pair.slice(eq + 1), attributes, raw: header }
}

async function loginResponse(app: TestEnv['app'] = env.app) {
  return call(app, 'POST', '/user/login', { body: { username: 'carol', password: 'carol-password-1' } })
}

function onlySessionCookie(response: Response) {
  const headers = response.headers.getSetCookie()
  expect(headers).toHaveLength(1)
  return parseSetCookie(headers[0] as string)
}

describe('login cookie with COOKIE_SECURE at its default (true)', () => {
  test('__Host- name, HttpOnly, Secure, SameSite=Lax, Path=/, no Domain, Max-Age = absolute lifetime', async () => {
    expect(env.config.cookieSecure).toBe(true)
    const response = await loginResponse()
    expect(response.status).toBe(200)
    const cookie = onlySessionCookie(response)
    expect(cookie.name).toStartWith('__Host-')
    expect(cookie.name).toBe(env.config.cookieName)
    // A generic name, not a framework default.
    expect(cookie.name).not.toMatch(/connect\.sid|PHPSESSID|JSESSIONID/i)
    expect(cookie.attributes.has('httponly')).toBe(true)
    expect(cookie.attributes.has('secure')).toBe(true)
    expect(cookie.attributes.get('samesite')?.toLowerCase()).toBe('lax')
    expect(cookie.attributes.get('path')).toBe('/')
    expect(cookie.attributes.has('domain')).toBe(false)
    expect(Number(cookie.attributes.get('max-age'))).toBe(env.config.sessionAbsoluteTimeoutMs / 1000)
    expect(Number(cookie.attributes.get('max-age'))).toBe(12 * 3600)
  })

  test('the token is 43 base64url characters (256 bits) and name+value stay under 4096 bytes', async () => {
    const cookie = onlySessionCookie(await loginResponse())
    expect(cookie.value).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(Buffer.byteLength(`${cookie.name}=${cookie.value}`)).toBeLessThan(4096)
    expect(Buffer.byteLength(cookie.raw)).toBeLessThan(4096)
  })

  test('the token carries no user data: two logins of one user share no long substring', async () => {
    const a = onlySessionCookie(await loginResponse()).value
    const b = onlySessionCookie(await loginResponse()).value
    expect(a).not.toBe(b)
    expect(a).not.toContain('carol')
    for (let i = 0; i + 8 <= a.length; i++) expect(b).not.toContain(a.slice(i, i + 8))
  })

  test('login and logout answer Cache-Control: no-store; logout clears the cookie alike', async () => {
    const login = await loginResponse()
    expect(login.headers.get('cache-control')).toBe('no-store')
    const cookie = onlySessionCookie(login)

    const logout = await call(env.app, 'POST', '/user/logout', { cookie: `${cookie.name}=${cookie.value}` })
    expect(logout.status).toBe(200)
    expect(logout.headers.get('cache-control')).toBe('no-store')
    const cleared = onlySessionCookie(logout)
    expect(cleared.name).toBe(cookie.name)
    expect(cleared.value).toBe('')
    expect(cleared.attributes.get('max-age')).toBe('0')
    // Same attributes as the one it replaces, or a browser would keep the original.
    expect(cleared.attributes.get('path')).toBe('/')
    expect(cleared.attributes.has('secure')).toBe(true)
    expect(cleared.attributes.has('httponly')).toBe(true)
    expect(cleared.attributes.has('domain')).toBe(false)

    // Even a logout without a session clears the cookie, and is not cacheable.
    const anonymous = await call(env.app, 'POST', '/user/logout')
    expect(anonymous.status).toBe(200)
    expect(anonymous.headers.get('cache-control')).toBe('no-store')
    expect(onlySessionCookie(anonymous).value).toBe('')
  })

  test('a failed login sets no cookie', async () => {
    const response = await call(env.app, 'POST', '/user/login', {
      body: { username: 'carol', password: 'wrong-password' },
    })
    expect(response.status).toBe(401)
    expect(response.headers.getSetCookie()).toHaveLength(0)
  })
})

describe('COOKIE_SECURE=false (plain-http local use)', () => {
  test('the name has no __Host- prefix and the cookie is not Secure, otherwise alike', async () => {
    const plain = createAppWith(env, { COOKIE_SECURE: 'false' })
    const cookie = onlySessionCookie(await loginResponse(plain))
    expect(cookie.name).toBe('sid')
    expect(cookie.name).not.toStartWith('__Host-')
    expect(cookie.attributes.has('secure')).toBe(false)
    expect(cookie.attributes.has('httponly')).toBe(true)
    expect(cookie.attributes.get('samesite')?.toLowerCase()).toBe('lax')
    expect(cookie.attributes.get('path')).toBe('/')
    expect(cookie.attributes.has('domain')).toBe(false)
    // The plain cookie works on the plain app.
    const me = await call(plain, 'GET', '/user/me', { cookie: `sid=${cookie.value}` })
    expect(me.status).toBe(200)
  })
})

describe('the token is accepted from the cookie only', () => {
  let token: string
  beforeAll(async () => {
    token = tokenOf(await loginAs(env, 'admin', ADMIN_PASSWORD))
  })

  test('the cookie itself works (control)', async () => {
    const me = await call(env.app, 'GET', '/user/me', { cookie: `${env.config.cookieName}=${token}` })
    expect(me.status).toBe(200)
  })

  test('not from a URL query', async () => {
    for (const name of ['sid', env.config.cookieName, 'token', 'session']) {
      const me = await call(env.app, 'GET', `/user/me?${encodeURIComponent(name)}=${token}`)
      expect(me.status).toBe(401)
    }
  })

  test('not from an Authorization header', async () => {
    for (const authorization of [`Bearer ${token}`, token, `Cookie ${env.config.cookieName}=${token}`]) {
      const me = await call(env.app, 'GET', '/user/me', { headers: { authorization } })
      expect(me.status).toBe(401)
    }
  })

  test('not from the body', async () => {
    const body = { sid: token, [env.config.cookieName]: token, token }
    // A protected route that declares no body schema, so the body reaches authentication as sent.
    const endAll = await call(env.app, 'DELETE', '/sessions', { body })
    expect(endAll.status).toBe(401)
    // Logout with the token only in the body ends nothing.
    const logout = await call(env.app, 'POST', '/user/logout', { body })
    expect(logout.status).toBe(200)
    expect(await logout.json()).toEqual({ loggedOut: false })
    const me = await call(env.app, 'GET', '/user/me', { cookie: `${env.config.cookieName}=${token}` })
    expect(me.status).toBe(200)
  })

  test('not from a cookie under another name (e.g. without the __Host- prefix)', async () => {
    const me = await call(env.app, 'GET', '/user/me', { cookie: `sid=${token}` })
    expect(me.status).toBe(401)
  })
})
