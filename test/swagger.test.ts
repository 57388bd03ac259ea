// API documentation: the Swagger page loads only local assets, and the spec lists every route
// with its request schema, its error responses and the session cookie scheme (issue 2 point 12).

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { call, createTestEnv, expectError, type TestEnv } from './helpers'

let env: TestEnv
beforeAll(async () => {
  env = await createTestEnv('swagger')
})
afterAll(async () => {
  await env.close()
})

interface Operation {
  requestBody?: { content?: Record<string, { schema?: { properties?: Record<string, unknown> } }> }
  responses?: Record<string, { content?: Record<string, unknown> }>
  security?: Record<string, string[]>[]
}
interface Spec {
  paths: Record<string, Record<string, Operation>>
  components: { securitySchemes?: Record<string, { type: string; in: string; name: string }> }
}

async function spec(): Promise<Spec> {
  const response = await call(env.app, 'GET', '/swagger/json')
  expect(response.status).toBe(200)
  return (await response.json()) as Spec
}

describe('Swagger UI page', () => {
  test('references only local assets, which are served', async () => {
    const response = await call(env.app, 'GET', '/swagger')
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toContain('text/html')
    const html = await response.text()
    expect(html).not.toMatch(/unpkg|jsdelivr|cdnjs|cdn\./i)
    // No absolute or protocol-relative URL anywhere in the page.
    expect(html).not.toMatch(/(https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}/i)

    const urls = [...html.matchAll(/\b(?:src|href)="([^"]+)"/g)].map((m) => m[1] as string)
    expect(urls.length).toBeGreaterThanOrEqual(2)
    const types: string[] = []
    for (const url of urls) {
      expect(url).toStartWith('/')
      expect(url).not.toStartWith('//')
      const asset = await call(env.app, 'GET', url)
      expect(asset.status).toBe(200)
      const type = asset.headers.get('content-type') ?? ''
      types.push(type)
      expect((await asset.arrayBuffer()).byteLength).toBeGreaterThan(1000)
    }
    expect(types.some((t) => t.includes('javascript'))).toBe(true)
    expect(types.some((t) => t.includes('text/css'))).toBe(true)
  })

  test('the page points at the spec and sends cookies with Try it out', async () => {
    const html = await (await call(env.app, 'GET', '/swagger')).text()
    expect(html).toMatch(/"url":"\/?swagger\/json"/)
    expect(html).toContain('"withCredentials":true')
    // The meta description is well-formed: the spec's description, with no stray quote cutting it.
    const description = ((await spec()) as unknown as { info: { description: string } }).info.description
    const meta = /<meta\s+name="description"\s+content="([^"]*)"\s*\/>/.exec(html)
    expect(meta?.[1]).toBe(description)
  })

  test('other asset names are the JSON 404, not files from elsewhere on disk', async () => {
    for (const file of ['package.json', '..%2F..%2Fpackage.json', 'index.html']) {
      await expectError(await call(env.app, 'GET', `/swagger/assets/${file}`), 404, 'not_found')
    }
  })

  test('a CSP allows its own scripts and exactly its one inline script, by hash; no framing', async () => {
    const response = await call(env.app, 'GET', '/swagger/')
    const html = await response.text()
    const policy = new Map(
      (response.headers.get('content-security-policy') ?? '')
        .split(';')
        .map((directive) => directive.trim().split(/\s+/))
        .map(([name = '', ...values]) => [name, values]),
    )
    const inline = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map(([, script]) => script ?? '')
    expect(inline).toHaveLength(1)
    const hash = new Bun.CryptoHasher('sha256').update(inline[0] ?? '').digest('base64')
    expect(policy.get('script-src')).toEqual(["'self'", `'sha256-${hash}'`])
    expect(policy.get('default-src')).toEqual(["'none'"])
    expect(policy.get('style-src')).toEqual(["'self'"])
    expect(policy.get('connect-src')).toEqual(["'self'"])
    expect(policy.get('frame-ancestors')).toEqual(["'none'"])
    expect(response.headers.get('x-frame-options')).toBe('DENY')
    // Every script and stylesheet the page loads is same-origin, so 'self' covers them.
    for (const [, url] of html.matchAll(/\b(?:src|href)="([^"]+)"/g)) expect(url).toStartWith('/swagger/assets/')
  })

  test('with a trailing slash too, the page finds the spec (issue 17 point 12)', async () => {
    for (const path of ['/swagger', '/swagger/']) {
      const page = await call(env.app, 'GET', path)
      expect(page.status).toBe(200)
      const specUrl = /"url":"([^"]+)"/.exec(await page.text())?.[1] ?? ''
      // Resolved the way the browser does, against the page's own URL.
      const resolved = new URL(specUrl, `http://localhost${path}`).pathname
      expect({ path, resolved }).toEqual({ path, resolved: '/swagger/json' })
      expect((await call(env.app, 'GET', resolved)).status).toBe(200)
    }
  })
})

describe('OpenAPI spec', () => {
  const routes: Record<string, { method: string; body?: string[]; responses: string[]; secured?: boolean }> = {
    '/user': { method: 'post', body: ['username', 'password'], responses: ['201', '409', '422', '503'] },
    '/user/login': { method: 'post', body: ['username', 'password'], responses: ['200', '401', '422', '429', '503'] },
    '/user/logout': { method: 'post', responses: ['200', '403', '503'] },
    '/user/me': { method: 'get', responses: ['200', '401', '503'], secured: true },
    '/user/assign': {
      method: 'post',
      body: ['username', 'permission'],
      responses: ['200', '401', '403', '422', '503'],
      secured: true,
    },
    '/user/unassign': {
      method: 'post',
      body: ['username', 'permission'],
      responses: ['200', '401', '403', '409', '422', '503'],
      secured: true,
    },
    '/permissions': { method: 'get', responses: ['200', '503'] },
    '/healthz': { method: 'get', responses: ['200'] },
  }

  for (const [path, expected] of Object.entries(routes)) {
    test(`${expected.method.toUpperCase()} ${path}: body schema, responses and security`, async () => {
      const operation = (await spec()).paths[path]?.[expected.method]
      expect(operation).toBeDefined()
      for (const status of expected.responses) expect(Object.keys(operation?.responses ?? {})).toContain(status)
      for (const [status, response] of Object.entries(operation?.responses ?? {})) {
        if (Number(status) >= 400) expect(Object.keys(response.content ?? {})).toContain('application/json')
      }
      if (expected.body) {
        const content = operation?.requestBody?.content ?? {}
        // JSON only: forms are refused (415), so the spec must not offer them.
        expect(Object.keys(content)).toEqual(['application/json'])
        const properties = Object.keys(content['application/json']?.schema?.properties ?? {})
        expect(properties.sort()).toEqual([...expected.body].sort())
      }
      if (expected.secured) expect(operation?.security).toContainEqual({ sessionCookie: [] })
      if (!expected.secured && path !== '/user/logout') expect(operation?.security).toBeUndefined()
    })
  }

  test('the session cookie is a security scheme named after the real cookie', async () => {
    const scheme = (await spec()).components.securitySchemes?.sessionCookie
    expect(scheme).toEqual(expect.objectContaining({ type: 'apiKey', in: 'cookie', name: env.config.cookieName }))
  })

  test('logout documents the cookie as optional', async () => {
    const security = (await spec()).paths['/user/logout']?.post?.security
    expect(security).toContainEqual({ sessionCookie: [] })
    expect(security).toContainEqual({})
  })

  test('/auth/verify is listed once, and no two operations share an operationId', async () => {
    const paths = (await spec()).paths as Record<string, Record<string, { operationId?: string }>>
    expect(Object.keys(paths['/auth/verify'] ?? {})).toEqual(['get'])
    const ids = Object.values(paths).flatMap((methods) => Object.values(methods).map((op) => op.operationId))
    expect(ids.every((id) => typeof id === 'string')).toBe(true)
    expect(new Set(ids).size).toBe(ids.length)
  })

  test('the asset route is not in the spec', async () => {
    expect(Object.keys((await spec()).paths).some((p) => p.includes('assets'))).toBe(false)
  })
})
