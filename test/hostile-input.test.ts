// Hostile input answered in 4xx (issue 17): deep nesting, out-of-range numbers, malformed and short
// Host headers, odd content types; and whatever still fails is the JSON 500 with one log line.
// What app.handle cannot show (Bun's own pages, Host headers) goes to a real listening server.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { BODY_LIMIT_BYTES, JSON_MAX_DEPTH } from '../src/lib/limits'
import {
  ADMIN_PASSWORD,
  call,
  createAppWith,
  createTestEnv,
  expectError,
  loginAs,
  registerUser,
  type TestEnv,
} from './helpers'

let env: TestEnv
let admin: string
const servers: { stop(closeActiveConnections?: boolean): unknown }[] = []

/** A real server over the test's database and Redis, with index.ts's body limit. */
function listen(app: ReturnType<typeof createAppWith>): string {
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
