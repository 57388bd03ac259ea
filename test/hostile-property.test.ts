// Property-based: whatever a client sends to any route of the app's own OpenAPI document (random
// JSON, text with control characters, out-of-range numbers, deep nesting, odd content types and
// headers and Host names, with and without a session), the answer is below 500, an error is the
// one JSON shape and never "no such route" for a route the document lists, every answer carries
// no-store, nosniff and no framing, and the server keeps answering (issue 17; checklist "CS Input",
// "CS Errors"). fast-check prints the seed and the shrunk request of any failure; FC_SEED and
// FC_RUNS reproduce or extend a run.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import fc from 'fast-check'
import { BODY_LIMIT_BYTES } from '../src/lib/limits'
import { ADMIN_PASSWORD, call, createTestEnv, type ErrorBody, loginAs, registerUser, type TestEnv } from './helpers'
import { rawRequest } from './processes'

let env: TestEnv
let port: number
let server: { stop(closeActiveConnections?: boolean): unknown } | undefined
let operations: Operation[]
const cookies: Record<'admin' | 'user', string> = { admin: '', user: '' }
let userCount = 0

interface Operation {
  method: string
  path: string
  pathParams: string[]
  queryParams: string[]
  bodyFields: string[]
}

interface SpecOperation {
  parameters?: { name: string; in: string }[]
  requestBody?: { content?: Record<string, { schema?: { properties?: Record<string, unknown> } }> }
}

/** A live session of each kind; a run may have ended, disabled or deleted it, so it is renewed. */
async function renew(kind: 'admin' | 'user'): Promise<void> {
  if (kind === 'admin') {
    cookies.admin = await loginAs(env, 'admin', ADMIN_PASSWORD)
    return
  }
  const username = `prop${++userCount}`
  await registerUser(env, username, 'property-password-1')
  cookies.user = await loginAs(env, username, 'property-password-1')
}

const seed = process.env.FC_SEED ? Number(process.env.FC_SEED) : undefined
const runs = (fallback: number) => (process.env.FC_RUNS ? Number(process.env.FC_RUNS) : fallback)

beforeAll(async () => {
  // Limits far out of reach: random logins must not lock the test's own accounts out.
  env = await createTestEnv('hostile-property', {
    LOGIN_MAX_FAILURES_PER_ACCOUNT: '1000000',
    LOGIN_MAX_FAILURES_PER_IP: '1000000',
  })
  await renew('admin')
  await renew('user')
  const spec = (await (await call(env.app, 'GET', '/swagger/json')).json()) as {
    paths: Record<string, Record<string, SpecOperation>>
  }
  operations = Object.entries(spec.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => ({
      method: method.toUpperCase(),
      path,
      pathParams: (op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name),
      queryParams: (op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name),
      bodyFields: Object.keys(op.requestBody?.content?.['application/json']?.schema?.properties ?? {}),
    })),
  )
  const app = env.app.listen({ port: 0, hostname: '127.0.0.1', maxRequestBodySize: BODY_LIMIT_BYTES * 16 })
  server = app.server ?? undefined
  port = app.server?.port ?? 0
})
afterAll(async () => {
  await server?.stop(true)
  await env.close()
})

// Text a client controls: control characters, lone surrogates, NUL, URL and JSON metacharacters.
const hostileChar = fc.oneof(
  fc.constantFrom('\u0000', '\u0001', '\u001b', '\u007f', '\u0085', '\ud800', '\udfff', '\u2028', '\ufeff'),
  fc.constantFrom('"', '\\', '%', '/', '?', '#', '&', '=', '.', ':', '@', ' ', '+', '[', ']', '{', '}'),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }),
)
const hostileText = fc.string({ unit: hostileChar, maxLength: 40 })
const number = fc.oneof(
  fc.integer(),
  fc.maxSafeInteger(),
  fc.double(),
  fc.constantFrom(0, 1, -1, 2147483647, 2147483648, 99999999999, 9007199254740992, 1e21, -0),
)
// Values that only mean something to a particular parameter: dates at the edges, cursors, ids.
const edgeValue = fc.constantFrom(
  '0000-01-01T00:00:00Z',
  '0001-01-01T00:00:00+23:59',
  '2016-12-31T23:59:60Z',
  '9999-12-31T23:59:59Z',
  '+275760-09-13T00:00:00Z',
  '9999999999999999.1',
  '1.9999999999999999999',
  '0.0',
  'true',
  'false',
  'null',
  '',
  '%00',
)
const textValue = fc.oneof(hostileText, number.map(String), edgeValue)
const jsonValue = fc.oneof(fc.jsonValue({ maxDepth: 3 }), hostileText, number)
const deepJson = fc
  .tuple(fc.integer({ min: 200, max: 20_000 }), fc.constantFrom('[', '{"a":'), fc.boolean())
  .map(([depth, open, wrapped]) => {
    const nested = open.repeat(depth) + (open === '[' ? ']' : '1}').repeat(depth)
    return wrapped ? `{"username":${nested},"password":"x"}` : nested
  })

/** A body for an operation: JSON with its own field names (to get past "unknown field"), anything else, or none. */
const bodyFor = (op: Operation) =>
  fc.oneof(
    fc.constant(undefined),
    fc
      .dictionary(op.bodyFields.length > 0 ? fc.constantFrom(...op.bodyFields) : hostileText, jsonValue)
      .map((o) => JSON.stringify(o)),
    fc.jsonValue().map((v) => JSON.stringify(v)),
    deepJson,
    hostileText,
  )

const contentType = fc.constantFrom(
  'application/json',
  'application/json; charset=utf-8',
  'APPLICATION/JSON',
  'application/jsonfoo',
  'application/json-patch+json',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  '',
)

const headerName = fc.constantFrom(
  'origin',
  'sec-fetch-site',
  'x-request-id',
  'x-forwarded-for',
  'x-tessera-permission',
  'accept',
  'accept-encoding',
  'user-agent',
  'referer',
  'if-none-match',
  'range',
  'expect',
  'transfer-encoding',
  'x-http-method-override',
)
const headerValue = fc.oneof(
  fc.string({ unit: 'binary-ascii', maxLength: 30 }),
  fc.constantFrom('null', 'http://localhost', 'http://evil.example', 'a:b', 'cross-site', '*', '100-continue'),
)
const session = fc.constantFrom('none', 'admin', 'user', 'garbage')
const host = fc.constantFrom('localhost', 'a', 'ab', 'abc', 'abcd', '127.0.0.1:3000', '[::1]', 'xn--nxasmq6b')

// A path segment as sent: text percent-encoded (lone surrogates made well-formed first, as no URL
// can carry them), or raw escapes no encoder would write. Not "." or "..": URLs resolve those
// away, and the request is then for another path.
const pathValue = fc
  .oneof(
    textValue.map((v) => encodeURIComponent(v.toWellFormed())),
    fc.base64String({ minLength: 16, maxLength: 16 }).map(encodeURIComponent),
    fc.constantFrom('%00', '%FF', '%ED%A0%80', '%', '%2F', '1%20', '+1', '0x10', '1e3'),
  )
  .filter((segment) => segment !== '' && !/^(\.|%2e){1,2}$/i.test(segment))

const request = fc
  .integer({ min: 0, max: 10_000 })
  .map((i) => operations[i % operations.length] as Operation)
  .chain((op) =>
    fc.record({
      op: fc.constant(op),
      pathValues: fc.array(pathValue, { minLength: op.pathParams.length, maxLength: op.pathParams.length }),
      query: fc.dictionary(
        op.queryParams.length > 0 ? fc.oneof(fc.constantFrom(...op.queryParams), hostileText) : hostileText,
        textValue,
        { maxKeys: 4 },
      ),
      body: bodyFor(op),
      contentType,
      headers: fc.dictionary(headerName, headerValue, { maxKeys: 4 }),
      session,
      host,
    }),
  )

type Sample = typeof request extends fc.Arbitrary<infer T> ? T : never

function toRequest(sample: Sample): Request | undefined {
  const { op } = sample
  let i = 0
  const path = op.path.replace(/\{[^}]+\}/g, () => sample.pathValues[i++] ?? 'x')
  const query = new URLSearchParams(sample.query).toString()
  const headers = new Headers()
  try {
    for (const [name, value] of Object.entries(sample.headers)) headers.set(name, value)
  } catch {
    return undefined // a header value no HTTP client can send
  }
  if (sample.contentType) headers.set('content-type', sample.contentType)
  if (sample.session === 'admin' || sample.session === 'user') headers.set('cookie', cookies[sample.session])
  if (sample.session === 'garbage') headers.set('cookie', `${env.config.cookieName}=${'A'.repeat(43)}`)
  const hasBody = sample.body !== undefined && op.method !== 'GET' && op.method !== 'HEAD'
  return new Request(`http://${sample.host}${path}${query ? `?${query}` : ''}`, {
    method: op.method,
    headers,
    body: hasBody ? sample.body : undefined,
  })
}

/** What every answer must be: below 500, the JSON error shape for errors, never cached, sniffed or framed. */
async function expectSaneAnswer(response: Response, op: Operation): Promise<void> {
  const text = await response.text()
  expect(response.status).toBeLessThan(500)
  expect(response.headers.get('cache-control')).toBe('no-store')
  expect(response.headers.get('x-content-type-options')).toBe('nosniff')
  expect(response.headers.get('x-frame-options')).toBe('DENY')
  const emptyRefusal = op.path === '/auth/verify' && (response.status === 401 || response.status === 403)
  if (response.status >= 400 && op.method !== 'HEAD' && !emptyRefusal) {
    expect(response.headers.get('content-type') ?? '').toStartWith('application/json')
    const body = JSON.parse(text) as ErrorBody
    expect(body.error.requestId).toBe(response.headers.get('x-request-id') ?? '')
    // The route is in the document, so it exists whatever the host: never "no such route".
    expect(body.error.code).not.toBe('not_found')
  }
}

describe('every route of the OpenAPI document', () => {
  test('answers random input, with and without a session, below 500 in the one error shape', async () => {
    expect(operations.length).toBeGreaterThan(20)
    await fc.assert(
      fc.asyncProperty(request, async (sample) => {
        const req = toRequest(sample)
        if (!req) return
        const response = await env.app.handle(req)
        if (response.status === 401 && (sample.session === 'admin' || sample.session === 'user')) {
          await renew(sample.session)
        }
        await expectSaneAnswer(response, sample.op)
      }),
      { numRuns: runs(600), seed },
    )
    expect((await call(env.app, 'GET', '/healthz')).status).toBe(200)
  }, 60_000)

  test('over a real socket, with random Host headers, answers below 500 in the one error shape', async () => {
    const hostHeader = fc.oneof(
      host,
      fc.constantFrom('a:b', 'a@b', 'x y', 'a/b', '', 'ab:99999', '[::1', 'a\\b', 'é'),
      fc.string({ unit: fc.constantFrom('a', ':', '@', ' ', '/', '[', ']', '.', '%', '9', '\t'), maxLength: 8 }),
    )
    await fc.assert(
      fc.asyncProperty(request, hostHeader, async (sample, hostValue) => {
        const req = toRequest(sample)
        if (!req) return
        const body = req.method === 'GET' || req.method === 'HEAD' ? '' : await req.text()
        const target = new URL(req.url)
        const headerLines = [...req.headers.entries()].map(([name, value]) => `${name}: ${value}\r\n`).join('')
        const response = await rawRequest(
          port,
          `${req.method} ${target.pathname}${target.search} HTTP/1.1\r\nhost: ${hostValue}\r\n${headerLines}` +
            `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
        )
        // Bun itself refuses what is not HTTP at all (400 with an empty body); anything it passes on is ours.
        if (response.status === 400 && !response.headers.has('x-request-id')) return
        if (response.status === 401 && (sample.session === 'admin' || sample.session === 'user')) {
          await renew(sample.session)
        }
        await expectSaneAnswer(response, sample.op)
      }),
      { numRuns: runs(200), seed },
    )
    const healthz = await rawRequest(port, 'GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n')
    expect(healthz.status).toBe(200)
  }, 60_000)
})
