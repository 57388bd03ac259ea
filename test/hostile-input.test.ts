// Hostile input answered in 4xx (issue 17): deep nesting, out-of-range numbers, malformed and short
// Host headers, odd content types; and whatever still fails is the JSON 500 with one log line.
// What app.handle cannot show (Bun's own pages, Host headers) goes to a real listening server.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { createApp } from '../src/app'
import { BODY_LIMIT_BYTES, JSON_MAX_DEPTH } from '../src/lib/limits'
import { createLogger } from '../src/lib/logger'
import {
  ADMIN_PASSWORD,
  call,
  createAppWith,
  createTestEnv,
  expectError,
  loginAs,
  registerUser,
  type TestEnv,
  testConfig,
} from './helpers'
import { rawRequest } from './processes'

let env: TestEnv
let admin: string
const servers: { stop(closeActiveConnections?: boolean): unknown }[] = []

interface Listenable {
  listen(options: { port: number; hostname: string; maxRequestBodySize: number }): {
    server: { port?: number; stop(closeActiveConnections?: boolean): unknown } | null
  }
}

/** A real server over the test's database and Redis, with index.ts's body limit. */
function listen(app: Listenable): string {
  const listening = app.listen({ port: 0, hostname: '127.0.0.1', maxRequestBodySize: BODY_LIMIT_BYTES * 16 })
  if (listening.server) servers.push(listening.server)
  return `http://127.0.0.1:${listening.server?.port}`
}

beforeAll(async () => {
  env = await createTestEnv('hostile-input')
  await registerUser(env, 'nora', 'nora-password-1')
  admin = await loginAs(env, 'admin', ADMIN_PASSWORD)
})
afterAll(async () => {
  for (const server of servers) await server.stop(true)
  await env.close()
})

const arrays = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`
const objects = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`

describe('deep nesting', () => {
  const deepBodies = {
    'arrays in a field': `{"username":${arrays(30_000)},"password":"x"}`,
    'arrays in an extra field': `{"username":"nora","password":"nora-password-1","x":${arrays(30_000)}}`,
    'arrays at the top': arrays(30_000),
    'objects in a field': `{"username":${objects(5_000)},"password":"x"}`,
    'a few thousand levels': `{"username":"nora","password":"x","x":${arrays(3_000)}}`,
  }

  test('a body nesting thousands of levels deep is 400 json_too_deep on every route that reads a body', async () => {
    const routes: [string, string | undefined][] = [
      ['/user/login', undefined],
      ['/user', undefined],
      ['/user/assign', admin],
      ['/user/password', admin],
    ]
    for (const [path, cookie] of routes) {
      for (const raw of Object.values(deepBodies)) {
        await expectError(await call(env.app, 'POST', path, { raw, cookie }), 400, 'json_too_deep')
      }
    }
  })

  test('over a real socket too, in development and production, answered at once as JSON', async () => {
    for (const NODE_ENV of ['development', 'production']) {
      const base = listen(createAppWith(env, { NODE_ENV }))
      for (const [shape, raw] of Object.entries(deepBodies)) {
        const response = await fetch(`${base}/user/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: raw,
          signal: AbortSignal.timeout(5000),
        })
        expect({ NODE_ENV, shape, status: response.status }).toEqual({ NODE_ENV, shape, status: 400 })
        await expectError(response, 400, 'json_too_deep')
      }
    }
  })

  test(`nesting up to ${JSON_MAX_DEPTH} levels is read as usual; brackets inside strings do not count`, async () => {
    const atLimit = `{"username":"nora","password":"nora-password-1","x":${arrays(JSON_MAX_DEPTH - 1)}}`
    const error = await expectError(await call(env.app, 'POST', '/user/login', { raw: atLimit }), 422)
    expect(error.error.field).toBe('x')
    const overLimit = `{"username":"nora","password":"nora-password-1","x":${arrays(JSON_MAX_DEPTH)}}`
    await expectError(await call(env.app, 'POST', '/user/login', { raw: overLimit }), 400, 'json_too_deep')
    const bracketsInText = JSON.stringify({ username: 'nora', password: `[{\\"${'['.repeat(200)}` })
    expect((await call(env.app, 'POST', '/user/login', { raw: bracketsInText })).status).toBe(401)
  })
})

describe('when error handling itself fails', () => {
  /** The app with a logger that keeps its lines, and routes that throw what no code of ours throws. */
  function appThatFails(NODE_ENV: string) {
    const lines: string[] = []
    const deps = { db: env.database.db, redis: env.redis, logger: createLogger('debug', (line) => lines.push(line)) }
    // Describing this error recurses without end: a stack overflow inside the error handler.
    const overflowing = new Error()
    Object.defineProperty(overflowing, 'message', {
      get(this: Error): string {
        return this.message
      },
    })
    // Nothing can look at this one, not even Elysia's own error handling before it calls ours.
    const unreadable = new Proxy(
      {},
      {
        get: () => {
          throw new Error('unreadable')
        },
        getPrototypeOf: () => {
          throw new Error('unreadable')
        },
      },
    )
    const app = createApp({ config: testConfig(env.databaseUrl, env.prefix, { NODE_ENV }), ...deps })
      .get('/test/overflowing', () => {
        throw overflowing
      })
      .get('/test/unreadable', () => {
        throw unreadable
      })
    return { app, lines }
  }

  async function expectJson500(response: Response, lines: string[]): Promise<void> {
    const body = await expectError(response, 500, 'internal_error')
    expect(response.headers.get('cache-control')).toBe('no-store')
    expect(response.headers.get('x-content-type-options')).toBe('nosniff')
    // One log line, JSON, naming the request; a stack, if any, escaped inside it.
    expect(lines).toHaveLength(1)
    const entry = JSON.parse(lines[0] ?? '') as { level: string; requestId: string; path: string }
    expect(entry).toMatchObject({ level: 'error', requestId: body.error.requestId })
    expect(entry.path).toStartWith('/test/')
    lines.length = 0
  }

  test('a stack overflow in the error handler, or an error nothing can read, is the JSON 500 with one log line', async () => {
    const { app, lines } = appThatFails('test')
    for (const path of ['/test/overflowing', '/test/unreadable']) {
      await expectJson500(await app.handle(new Request(`http://localhost${path}`)), lines)
    }
  })

  test('a real server in development answers them with the JSON 500 too, not its own error page', async () => {
    const { app, lines } = appThatFails('development')
    const base = listen(app)
    for (const path of ['/test/overflowing', '/test/unreadable']) {
      await expectJson500(await fetch(`${base}${path}`), lines)
    }
  })
})

describe('out-of-range numbers, dates and text in admin and audit queries', () => {
  const expect422 = async (method: string, path: string, field: string) => {
    const response = await call(env.app, method, path, { cookie: admin })
    const error = await expectError(response, 422, 'validation_failed')
    expect({ path, field: error.error.field }).toEqual({ path, field })
  }

  test('ids past PostgreSQL integer are 422 naming the field; the last valid id is simply not found', async () => {
    await expect422('GET', '/admin/users/2147483648', 'id')
    await expect422('GET', '/admin/users/99999999999/sessions', 'id')
    await expect422('POST', '/admin/users/2147483648/disable', 'id')
    await expect422('DELETE', '/admin/users/2147483648/sessions/AAAAAAAAAAAAAAAA', 'id')
    await expect422('GET', '/admin/users?after=99999999999', 'after')
    await expect422('GET', '/audit?userId=99999999999', 'userId')
    await expectError(await call(env.app, 'GET', '/admin/users/2147483647', { cookie: admin }), 404, 'user_not_found')
    expect((await call(env.app, 'GET', '/admin/users?after=2147483647', { cookie: admin })).status).toBe(200)
    expect((await call(env.app, 'GET', '/audit?userId=2147483647', { cookie: admin })).status).toBe(200)
  })

  test('cursors and dates outside what PostgreSQL and Date accept are 422 naming the field', async () => {
    await expect422('GET', '/audit?cursor=9999999999999999.1', 'cursor')
    await expect422('GET', '/audit?cursor=1.9999999999999999999', 'cursor')
    await expect422('GET', '/audit?from=0000-01-01T00:00:00Z', 'from')
    await expect422('GET', '/audit?to=0001-01-01T00:00:00%2B23:59', 'to')
    await expect422('GET', '/audit?from=2016-12-31T23:59:60Z', 'from')
    for (const query of ['from=0001-01-01T00:00:00Z', 'to=9999-12-31T23:59:59Z', 'cursor=253402300799999.1']) {
      expect({ query, status: (await call(env.app, 'GET', `/audit?${query}`, { cookie: admin })).status }).toEqual({
        query,
        status: 200,
      })
    }
  })

  test('a NUL, or any character no username holds, in ?q= is 422 naming q', async () => {
    for (const q of ['%00', 'a%00b', '%25', 'ali%20ce', '%C3%A9']) await expect422('GET', `/admin/users?q=${q}`, 'q')
    const found = await call(env.app, 'GET', '/admin/users?q=NOR', { cookie: admin })
    expect(((await found.json()) as { users: { username: string }[] }).users.map((u) => u.username)).toEqual(['nora'])
  })
})

describe('malformed Host headers, over a real socket', () => {
  let port: number
  let nora: string
  beforeAll(async () => {
    port = Number(new URL(listen(env.app)).port)
    nora = await loginAs(env, 'nora', 'nora-password-1')
  })

  /** One raw HTTP/1.1 request: fetch() will not send these Host headers. */
  const send = (method: string, path: string, host: string, headers: Record<string, string> = {}, body = '') =>
    rawRequest(
      port,
      `${method} ${path} HTTP/1.1\r\nhost: ${host}\r\n${Object.entries(headers)
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join('')}content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    )

  test('with an Origin header, on a permission-checked route, or anywhere else, are 400 invalid_host', async () => {
    const login = JSON.stringify({ username: 'nora', password: 'nora-password-1' })
    for (const host of ['a:b', 'a@b', 'x y', 'a/b', 'ab:99999']) {
      const cases: [string, string, Record<string, string>, string][] = [
        ['POST', '/user/login', { origin: 'http://a', 'content-type': 'application/json' }, login],
        ['GET', '/admin/users', { cookie: nora }, ''],
        ['GET', '/admin/users/1', { cookie: admin }, ''],
        ['GET', '/auth/verify?permission=user:read', { cookie: nora }, ''],
        ['GET', '/healthz', {}, ''],
      ]
      for (const [method, path, headers, body] of cases) {
        const response = await send(method, path, host, headers, body)
        expect({ host, path, status: response.status }).toEqual({ host, path, status: 400 })
        const error = await expectError(response, 400, 'invalid_host')
        expect(error.error.field).toBe('host')
      }
    }
  })

  test('well-formed hosts, with or without a port, are served as before', async () => {
    for (const host of ['localhost', `127.0.0.1:${port}`, '[::1]:80', 'tessera.internal']) {
      expect((await send('GET', '/user/me', host, { cookie: nora })).status).toBe(200)
    }
  })
})

describe('short host names', () => {
  const request = (url: string, init: RequestInit = {}) => new Request(url, init)

  test('are routed by their real path through app.handle and app.fetch, whatever the host length', async () => {
    const nora = await loginAs(env, 'nora', 'nora-password-1')
    for (const host of ['a', 'ab', 'abc', 'abcd', 'localhost']) {
      for (const handle of [(r: Request) => env.app.handle(r), (r: Request) => env.app.fetch(r)]) {
        expect({ host, status: (await handle(request(`http://${host}/auth/verify`))).status }).toEqual({
          host,
          status: 401,
        })
        const verified = await handle(request(`http://${host}/auth/verify?permission=`, { headers: { cookie: nora } }))
        expect({ host, status: verified.status, user: verified.headers.get('x-user-name') }).toEqual({
          host,
          status: 200,
          user: 'nora',
        })
        expect((await handle(request(`https://${host}/healthz`))).status).toBe(200)
        const me = await handle(request(`http://${host}/user/me?x=/y`, { headers: { cookie: nora } }))
        expect({ host, status: me.status }).toEqual({ host, status: 200 })
        // A longer path that ends like a route is not that route.
        await expectError(await handle(request(`http://${host}/x/user/me`, { headers: { cookie: nora } })), 404)
      }
    }
  })

  test("the origin check still sees the request's own origin", async () => {
    const login = (origin: string) =>
      env.app.handle(
        request('http://ab/user/login', {
          method: 'POST',
          headers: { origin, 'content-type': 'application/json' },
          body: JSON.stringify({ username: 'nora', password: 'nora-password-1' }),
        }),
      )
    expect((await login('http://ab')).status).toBe(200)
    await expectError(await login('http://evil.example'), 403, 'cross_origin_request')
  })

  test('a real server routes Host: abc by the real path too', async () => {
    const port = Number(new URL(listen(env.app)).port)
    for (const host of ['a', 'abc']) {
      const response = await rawRequest(port, `GET /auth/verify HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n\r\n`)
      expect({ host, status: response.status }).toEqual({ host, status: 401 })
    }
  })
})

describe('headers', () => {
  /** What every answer carries, errors and Bun-facing failures included. */
  function expectGuardHeaders(label: string, response: Response): void {
    const headers = Object.fromEntries(
      ['cache-control', 'x-content-type-options', 'x-frame-options', 'content-security-policy'].map((name) => [
        name,
        response.headers.get(name),
      ]),
    )
    expect({ label, headers }).toEqual({
      label,
      headers: {
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
        'x-frame-options': 'DENY',
        'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
      },
    })
  }

  test('no-store, nosniff and no framing on every answer, every error path included', async () => {
    const base = listen(env.app)
    const port = Number(new URL(base).port)
    const json = { 'content-type': 'application/json' }
    const answers: [string, Response][] = [
      ['200', await call(env.app, 'GET', '/healthz')],
      ['404 route', await call(env.app, 'GET', '/nope')],
      ['404 HEAD', await call(env.app, 'HEAD', '/nope')],
      ['404 asset', await call(env.app, 'GET', '/swagger/assets/nope.js')],
      ['400 JSON', await call(env.app, 'POST', '/user/login', { raw: '{' })],
      ['400 depth', await call(env.app, 'POST', '/user/login', { raw: arrays(100) })],
      ['401', await call(env.app, 'GET', '/user/me')],
      ['401 verify', await call(env.app, 'GET', '/auth/verify')],
      ['413 declared', await call(env.app, 'POST', '/user/login', { raw: '{}', headers: { 'content-length': '1e9' } })],
      ['415', await call(env.app, 'POST', '/user/login', { raw: 'a=b', headers: { 'content-type': 'text/plain' } })],
      ['422', await call(env.app, 'POST', '/user/login', { body: { username: 1 } })],
      [
        '413 chunked, from the parser',
        await fetch(`${base}/user/login`, {
          method: 'POST',
          headers: json,
          body: new Blob([`{"password":"${'x'.repeat(BODY_LIMIT_BYTES)}"}`]).stream(),
        }),
      ],
      ['400 before routing', await rawRequest(port, 'GET /user/me HTTP/1.1\r\nhost: a@b\r\nconnection: close\r\n\r\n')],
    ]
    for (const [label, response] of answers) expectGuardHeaders(label, response)
    expect(answers.find(([label]) => label.startsWith('413 chunked'))?.[1].status).toBe(413)
  })

  test('Strict-Transport-Security only in production with Secure cookies', async () => {
    const hsts = async (overrides: Record<string, string>) =>
      (await createAppWith(env, overrides).handle(new Request('http://localhost/nope'))).headers.get(
        'strict-transport-security',
      )
    expect(await hsts({ NODE_ENV: 'production', COOKIE_SECURE: 'true' })).toBe('max-age=31536000; includeSubDomains')
    expect(await hsts({ NODE_ENV: 'production', COOKIE_SECURE: 'false' })).toBeNull()
    expect(await hsts({ NODE_ENV: 'development', COOKIE_SECURE: 'true' })).toBeNull()
    expect(await hsts({ NODE_ENV: 'test', COOKIE_SECURE: 'false' })).toBeNull()
  })

  test('only application/json (any case, any parameters) is read as JSON; application/jsonfoo is not', async () => {
    const login = JSON.stringify({ username: 'nora', password: 'nora-password-1' })
    for (const type of ['application/jsonfoo', 'application/json-seq', 'application/jsonp', 'text/json', 'json']) {
      const response = await call(env.app, 'POST', '/user/login', { raw: login, headers: { 'content-type': type } })
      expect({ type, status: response.status }).toEqual({ type, status: 415 })
      await expectError(response, 415, 'unsupported_media_type')
    }
    for (const type of [
      'application/json',
      'Application/JSON',
      'application/json; charset=utf-8',
      ' application/json ;x=y',
    ]) {
      const response = await call(env.app, 'POST', '/user/login', { raw: login, headers: { 'content-type': type } })
      expect({ type, status: response.status }).toEqual({ type, status: 200 })
    }
  })
})
