// Nothing a client sends can stop the audit trail (checklist 16.4.x): hostile usernames reach the
// stream only as safe text, and an entry PostgreSQL refuses anyway (written by another writer, or
// an older version) is set aside in audit_dead_letters while the entries after it are recorded.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { createAuditMetrics } from '../src/lib/metrics'
import { runAuditConsumer } from '../src/modules/audit/consumer'
import { EVENT_TEXT_MAX, encodeEvent } from '../src/store'
import { call, createTestEnv, registerUser, streamEntries, type TestEnv } from './helpers'
import { startCli, waitFor } from './processes'
import { freePort } from './services'

let env: TestEnv
beforeAll(async () => {
  // A low account limit, so the hostile names also take the rate-limited path, which writes its own event.
  env = await createTestEnv('audit-poison', { LOGIN_MAX_FAILURES_PER_ACCOUNT: '2' })
  await registerUser(env, 'rita', 'rita-password-1')
})
afterAll(() => env.close())

const HOSTILE = [
  '\u0000',
  'a\u0000b',
  '\ud800',
  'x\udfff',
  '\u001b[31mred\u0007',
  'z'.repeat(64),
  'y'.repeat(10 * 1024),
  `${'w'.repeat(60)}\u0000`,
]

async function auditRows(): Promise<{ stream_id: string; type: string; data: Record<string, unknown> }[]> {
  return env.database.sql`select stream_id, type, data from audit_events order by id`
}

async function deadLetters(): Promise<{ stream_id: string; fields: Record<string, string>; raw: string }[]> {
  return env.database.sql`select stream_id, fields, raw from audit_dead_letters order by id`
}

describe('hostile usernames', () => {
  test('get a 4xx, never a 5xx, and reach the stream only as safe text', async () => {
    for (const username of HOSTILE) {
      for (let attempt = 0; attempt < 3; attempt++) {
        const response = await call(env.app, 'POST', '/user/login', { body: { username, password: 'x' } })
        expect([401, 422, 429]).toContain(response.status)
      }
    }
    const entries = await streamEntries(env)
    const usernames = entries.map(([, fields]) => fields[fields.indexOf('un') + 1] ?? '')
    expect(usernames.length).toBeGreaterThan(0)
    for (const name of usernames) {
      // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
      expect(name).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/)
      expect(name.length).toBeLessThanOrEqual(EVENT_TEXT_MAX)
      expect(name).toBe(name.toWellFormed())
    }
  })
})

describe('the audit consumer', () => {
  test('sets aside what PostgreSQL refuses and records every entry after it', async () => {
    const { keys } = env.ctx.store
    // Entries no Tessera of this version writes, as a foreign writer or an older version might.
    const poison = [
      await env.redis.xadd(keys.events(0), '*', 't', 'login_failed', 'at', String(Date.now()), 'un', 'a\u0000b'),
      await env.redis.xadd(keys.events(0), '*', 't', 'logout', 'at', '1e20', 'ac', '1'),
      await env.redis.xadd(keys.events(0), '*', 'junk\u0000', 'value\u0000'),
    ]
    const entry = encodeEvent({
      type: 'login_failed',
      username: 'b\u0000c',
      reason: 'bad_credentials',
      at: Date.now(),
      instance: 'test',
      actorId: 0,
      subjectId: 0,
    })
    await env.redis.xadd(keys.events(0), '*', ...entry)
    // A normal login after all of it.
    const login = await call(env.app, 'POST', '/user/login', {
      body: { username: 'rita', password: 'rita-password-1' },
    })
    expect(login.status).toBe(200)

    const metrics = createAuditMetrics()
    const controller = new AbortController()
    const running = runAuditConsumer({
      redis: env.redis,
      db: env.ctx.db,
      keys,
      logger: env.ctx.logger,
      signal: controller.signal,
      consumer: 'poison-test',
      claimIdleMs: 60_000,
      batchSize: 50,
      blockMs: 100,
      metrics,
    })
    try {
      await waitFor(
        async () => (await auditRows()).some((row) => row.type === 'login_succeeded'),
        15_000,
        'the later login recorded',
      )
      const streamIds = (await env.redis.xrange(keys.events(0), '-', '+')).map(([id]) => id)
      await waitFor(
        async () => (await auditRows()).length + (await deadLetters()).length === streamIds.length,
        10_000,
        'every entry recorded or set aside',
      )
      const recorded = (await auditRows()).map((row) => row.stream_id)
      const aside = await deadLetters()
      // Each entry exactly once, in one table or the other.
      expect([...recorded, ...aside.map((row) => row.stream_id)].sort()).toEqual([...streamIds].sort())
      expect(aside.map((row) => row.stream_id).sort()).toEqual(poison.filter((id) => id !== null).sort())
      // The dead letter keeps the exact entry for forensics, NUL and all.
      const first = aside.find((row) => row.stream_id === poison[0])
      expect(JSON.parse(Buffer.from(first?.raw ?? '', 'base64').toString('utf8'))).toContain('a\u0000b')
      expect(first?.fields.un).toBe('a\ufffdb')
      expect(await metrics.register.metrics()).toContain(`tessera_audit_dead_letters_total ${aside.length}`)
      expect(await metrics.register.metrics()).toContain(`tessera_audit_recorded_total ${recorded.length}`)
      const [pending] = (await env.redis.xpending(keys.events(0), 'audit')) as [number]
      expect(pending).toBe(0)
    } finally {
      controller.abort()
      await running
    }
  }, 40_000)

  test('as a process, counts what it set aside at /metrics on AUDIT_METRICS_PORT', async () => {
    const prefix = `${env.prefix}cli:`
    const events = `${prefix}{auth}:events`
    await env.redis.xadd(events, '*', 't', 'logout', 'at', String(Date.now()), 'in', 'x\u0000')
    await env.redis.xadd(
      events,
      '*',
      ...encodeEvent({ type: 'logout', at: Date.now(), instance: 'a', actorId: 1, subjectId: 1 }),
    )
    const port = freePort()
    const consumer = startCli('src/cli/audit.ts', {
      DATABASE_URL: env.databaseUrl,
      REDIS_URL: env.config.redisUrl,
      REDIS_KEY_PREFIX: prefix,
      AUDIT_CONSUMER_NAME: 'poison-cli',
      AUDIT_METRICS_PORT: String(port),
    })
    try {
      const metricsText = async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
      await waitFor(
        async () => (await metricsText()).includes('tessera_audit_recorded_total 1'),
        15_000,
        'the good entry recorded',
      )
      expect(await metricsText()).toContain('tessera_audit_dead_letters_total 1')
    } finally {
      await consumer.stop()
    }
    expect(consumer.output()).not.toContain('\u0000')
  }, 30_000)
})
