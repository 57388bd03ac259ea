// Liveness (touches nothing), readiness (answers only when Redis and PostgreSQL do, and the instance
// is not draining) and metrics.

import { sql } from 'drizzle-orm'
import { Elysia, t } from 'elysia'
import type { AppContext } from '../../context'
import { AppError, withPostgres, withRedis } from '../../lib/errors'
import { errors } from '../../lib/responses'

export function healthRoutes(ctx: AppContext) {
  return new Elysia({ name: 'tessera.routes.health', seed: ctx.id, tags: ['health'] })
    .get('/healthz', () => ({ status: 'ok' as const }), {
      response: { 200: t.Object({ status: t.Literal('ok') }) },
      detail: { summary: 'Liveness', description: 'Answers while the process runs; checks nothing else.' },
    })
    .get(
      '/readyz',
      async () => {
        // Before anything else: a load balancer must see the 503 at once, whatever Redis is doing.
        if (ctx.drain.draining) throw new AppError('draining', { headers: { 'retry-after': '2' } })
        await withRedis(() => ctx.redis.ping())
        await withPostgres(() => ctx.db.execute(sql`select 1`))
        return { status: 'ready' as const }
      },
      {
        response: { 200: t.Object({ status: t.Literal('ready') }), ...errors() },
        detail: {
          summary: 'Readiness',
          description:
            'Answers 200 only when Redis and PostgreSQL both answer; 503 `draining` from the moment the instance is told to stop.',
        },
      },
    )
    .get(
      '/metrics',
      async ({ set }) => {
        set.headers['content-type'] = ctx.metrics.register.contentType
        return await ctx.metrics.register.metrics()
      },
      {
        detail: {
          summary: 'Metrics',
          description:
            'Prometheus text format: request durations, login and authentication outcomes, the session cache, the event tailer, the outbox and dependency errors of this instance (see docs/operations.md). Touches neither Redis nor PostgreSQL.',
        },
      },
    )
}
