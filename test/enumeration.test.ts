// Unknown user, wrong password and disabled account are indistinguishable by status, body,
// headers and response time (ASVS 6.3.8; issue 2 point 7).

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { eq } from 'drizzle-orm'
import { users } from '../src/db/schema'
import { call, createTestEnv, registerUser, type TestEnv } from './helpers'

let env: TestEnv
beforeAll(async () => {
  // Limits high enough that the repeated failures below are never rate limited.
  env = await createTestEnv('enumeration', {
    LOGIN_MAX_FAILURES_PER_ACCOUNT: '10000',
    LOGIN_MAX_FAILURES_PER_IP: '100000',
  })
  await registerUser(env, 'frank', 'frank-password-1')
  await registerUser(env, 'gina', 'gina-password-1')
  await env.database.db.update(users).set({ disabled: true }).where(eq(users.username, 'gina'))
})
afterAll(async () => {
  await env.close()
})

const attempt = (username: string, password: string) =>
  call(env.app, 'POST', '/user/login', { body: { username, password } })

/** Status, body without its request id, and the header names and values that may not differ. */
async function observable(response: Response) {
  const body = (await response.json()) as { error: Record<string, unknown> }
  const { requestId, ...error } = body.error
  expect(requestId).toBe(response.headers.get('x-request-id') as string)
  const headers = [...response.headers.entries()]
    .filter(([name]) => name !== 'x-request-id')
    .sort(([a], [b]) => a.localeCompare(b))
  return { status: response.status, body: { ...body, error }, headers }
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

async function timed(username: string, password: string): Promise<number> {
  const started = performance.now()
  const response = await attempt(username, password)
  const elapsed = performance.now() - started
  expect(response.status).toBe(401)
  return elapsed
}

describe('login failures are indistinguishable', () => {
  test('unknown user, wrong password and disabled account: same status, body and headers', async () => {
    const unknown = await observable(await attempt('nobody-here', 'frank-password-1'))
    const wrong = await observable(await attempt('frank', 'not-franks-password'))
    const disabled = await observable(await attempt('gina', 'gina-password-1'))
    expect(unknown.status).toBe(401)
    expect(unknown.body.error.code).toBe('invalid_credentials')
    expect(wrong).toEqual(unknown)
    expect(disabled).toEqual(unknown)
  })

  test('the username is matched case-insensitively, so its case reveals nothing either', async () => {
    const upper = await observable(await attempt('FRANK', 'not-franks-password'))
    const wrong = await observable(await attempt('frank', 'not-franks-password'))
    expect(upper).toEqual(wrong)
    expect((await attempt('FRANK', 'frank-password-1')).status).toBe(200)
  })

  test('a disabled user cannot log in with the right password, and can once re-enabled', async () => {
    expect((await attempt('gina', 'gina-password-1')).status).toBe(401)
    await env.database.db.update(users).set({ disabled: false }).where(eq(users.username, 'gina'))
    expect((await attempt('gina', 'gina-password-1')).status).toBe(200)
    await env.database.db.update(users).set({ disabled: true }).where(eq(users.username, 'gina'))
    expect((await attempt('gina', 'gina-password-1')).status).toBe(401)
  })

  test('unknown user and wrong password take the same time: both run argon2', async () => {
    // Warm up both paths (the dummy hash is computed once, lazily).
    await timed('nobody-here', 'whatever-password')
    await timed('frank', 'whatever-password')
    const unknown: number[] = []
    const wrong: number[] = []
    for (let i = 0; i < 12; i++) {
      // Interleaved, alternating which goes first, so drift in machine load hits both alike.
      const measureUnknown = async () => unknown.push(await timed(`nobody-${i}`, 'whatever-password'))
      const measureWrong = async () => wrong.push(await timed('frank', `wrong-password-${i}`))
      if (i % 2) {
        await measureUnknown()
        await measureWrong()
      } else {
        await measureWrong()
        await measureUnknown()
      }
    }
    const ratio = median(unknown) / median(wrong)
    expect(ratio).toBeGreaterThan(0.5)
    expect(ratio).toBeLessThan(2)
    // argon2id at 19 MiB, t=2 takes milliseconds, not microseconds: both paths really hash.
    expect(median(unknown)).toBeGreaterThan(2)
    // A login that does no argon2 at all (e.g. a validation failure) would be far quicker.
    const rejected: number[] = []
    for (let i = 0; i < 10; i++) {
      const started = performance.now()
      const response = await call(env.app, 'POST', '/user/login', { body: { username: '', password: 'x' } })
      rejected.push(performance.now() - started)
      expect(response.status).toBe(422)
    }
    expect(median(rejected)).toBeLessThan(median(unknown) / 2)
  })
})
