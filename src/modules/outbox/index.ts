// The transactional outbox: changes committed in PostgreSQL that must still reach Redis.
//
// A grant, a revoke or a disabled user is written with an outbox row in the same transaction. The
// row is relayed at once after the commit and, should Redis be down, by a loop on every instance
// until it is applied. Every Redis-side step is idempotent per row id (see store.ts), so a relay
// that dies between applying and marking the row, or two relayers applying it at once, change
// nothing the second time.

import { and, asc, eq, inArray, isNotNull, isNull, lt, or, sql } from 'drizzle-orm'
import type { AppContext } from '../../context'
import type { Db, Tx } from '../../db/client'
import { outbox } from '../../db/schema'
import { isPostgresUnavailable, isRedisUnavailable, UnavailableError } from '../../lib/errors'
import { describeError } from '../../lib/logger'
import { sleepUnlessAborted } from '../../lib/sleep'
import { appendEventOnce, type EventInput, revokeUserSessions, setUserPermissions } from '../../store'

export type OutboxMessage =
  | { kind: 'event'; at: number; event: EventInput }
  | { kind: 'permissions'; at: number; userId: number; version: number; permissions: string[]; event: EventInput }
  | {
      kind: 'revoke_user'
      at: number
      userId: number
      event: EventInput
      always: boolean
      /** A session to keep, e.g. the one a password change rotated to this token hash. */
      exceptTokenHash?: string
      /** The user's version after the change: logins that read an older one open no session. */
      openFromVersion?: number
    }

/** Adds a message in the caller's transaction; returns its id for an immediate relay. */
export async function enqueueOutbox(tx: Tx | Db, message: OutboxMessage): Promise<number> {
  const [row] = await tx.insert(outbox).values({ kind: message.kind, payload: message }).returning({ id: outbox.id })
  if (!row) throw new Error('outbox insert returned no row')
  return row.id
}

async function applyMessage(ctx: AppContext, id: number, message: OutboxMessage): Promise<void> {
  const { store } = ctx
  switch (message.kind) {
    case 'event':
      await appendEventOnce(store, message.event, message.at, id)
      return
    case 'permissions':
      await setUserPermissions(store, {
        userId: message.userId,
        version: message.version,
        permissions: message.permissions,
        outboxId: id,
        event: message.event,
        now: message.at,
      })
      return
    case 'revoke_user':
      await revokeUserSessions(store, {
        userId: message.userId,
        exceptTokenHash: message.exceptTokenHash,
        event: message.event,
        now: message.at,
        always: message.always,
        outboxId: id,
        openFromVersion: message.openFromVersion,
      })
      return
  }
  // A row this version cannot read: its own failure (set aside after the cap), not an outage.
  throw new TypeError(`outbox message of unknown kind "${(message as { kind?: unknown }).kind}"`)
}

/** How long a claim keeps other relayers off a row: far longer than applying it takes. */
const CLAIM_MS = 30_000
/** Failures other than an outage before a row is set aside (failed_at) for an operator. */
export const OUTBOX_MAX_ATTEMPTS = 8
/** Applied rows are kept this long (for inspection), then pruned. */
const KEEP_APPLIED_MS = 86_400_000

type Claimed = { id: number; payload: unknown; attempts: number }

/**
 * Claims rows in one short statement: SKIP LOCKED, so concurrent relayers take disjoint rows, and a
 * lease instead of a transaction, so no row lock is held across the Redis round trips. Rows named
 * by `ids` (a request's own, just committed) are claimed whoever holds them: applying is idempotent
 * per row (outbox markers in Redis), and the request must not answer before its change is applied.
 */
async function claim(ctx: AppContext, ids: number[] | undefined, limit: number): Promise<Claimed[]> {
  // Leases are reckoned in PostgreSQL's time, which every relayer shares.
  const eligible = ids
    ? and(isNull(outbox.appliedAt), isNull(outbox.failedAt), inArray(outbox.id, ids))
    : and(
        isNull(outbox.appliedAt),
        isNull(outbox.failedAt),
        or(isNull(outbox.claimedUntil), lt(outbox.claimedUntil, sql`now()`)),
      )
  const candidates = ctx.db
    .select({ id: outbox.id })
    .from(outbox)
    .where(eligible)
    .orderBy(asc(outbox.id))
    .limit(limit)
    .for('update', ids ? undefined : { skipLocked: true })
  return ctx.db
    .update(outbox)
    .set({ claimedUntil: sql`now() + ${CLAIM_MS} * interval '1 millisecond'` })
    .where(inArray(outbox.id, candidates))
    .returning({ id: outbox.id, payload: outbox.payload, attempts: outbox.attempts })
}

/** A failure for a reason other than an outage: retried later with backoff, set aside after the cap. */
async function recordFailure(ctx: AppContext, row: Claimed, error: unknown): Promise<void> {
  const attempts = row.attempts + 1
  const failed = attempts >= OUTBOX_MAX_ATTEMPTS
  const retryMs = Math.min(1_000 * 2 ** attempts, 300_000)
  await ctx.db
    .update(outbox)
    .set({
      attempts,
      lastError: describeError(error).slice(0, 1000),
      claimedUntil: sql`now() + ${retryMs} * interval '1 millisecond'`,
      ...(failed ? { failedAt: sql`now()` } : {}),
    })
    .where(eq(outbox.id, row.id))
  ctx.logger.error(failed ? 'outbox message set aside after repeated failures' : 'outbox message failed', {
    outboxId: row.id,
    attempts,
    error: describeError(error),
  })
}

/**
 * Applies pending rows (or the given ones) in id order, each outside any transaction. Returns how
 * many were applied; stops at the first Redis outage and releases what it had not applied.
 */
export async function relayOutbox(ctx: AppContext, ids?: number[], limit = 100): Promise<number> {
  const rows = await claim(ctx, ids, limit)
  let applied = 0
  for (const [index, row] of rows.entries()) {
    try {
      await applyMessage(ctx, row.id, row.payload as OutboxMessage)
    } catch (error) {
      if (isRedisUnavailable(error)) {
        // Not the row's fault: the rest is released for the next relayer, uncounted.
        const released = rows.slice(index).map((r) => r.id)
        await ctx.db.update(outbox).set({ claimedUntil: null }).where(inArray(outbox.id, released))
        throw new UnavailableError('redis', error)
      }
      await recordFailure(ctx, row, error)
      continue
    }
    await ctx.db.update(outbox).set({ appliedAt: sql`now()`, claimedUntil: null }).where(eq(outbox.id, row.id))
    applied++
  }
  return applied
}

/** Relays right after a commit; a failure is logged and left to the background loop. */
export async function relayNow(ctx: AppContext, ids: number[]): Promise<boolean> {
  try {
    return (await relayOutbox(ctx, ids)) === ids.length
  } catch (error) {
    ctx.logger.warn('outbox relay deferred', { error: describeError(error) })
    return false
  }
}

/** Deletes rows applied longer ago than KEEP_APPLIED_MS; failed rows stay for an operator. */
export async function pruneOutbox(ctx: AppContext): Promise<number> {
  const rows = await ctx.db
    .delete(outbox)
    .where(
      and(
        isNotNull(outbox.appliedAt),
        lt(outbox.appliedAt, sql`now() - ${KEEP_APPLIED_MS} * interval '1 millisecond'`),
      ),
    )
    .returning({ id: outbox.id })
  return rows.length
}

/** Polls for pending rows until the signal aborts, and prunes applied ones now and then. */
export async function runOutboxRelay(ctx: AppContext, signal: AbortSignal, intervalMs = 1_000): Promise<void> {
  // Almost every poll finds nothing: one read of the partial index on pending rows counts the
  // backlog (a metric) and decides whether a claim is worth making.
  const pending = ctx.db
    .select({
      backlog: sql<number>`count(*)::int`,
      due: sql<number>`count(*) filter (where ${or(isNull(outbox.claimedUntil), lt(outbox.claimedUntil, sql`now()`))})::int`,
    })
    .from(outbox)
    .where(and(isNull(outbox.appliedAt), isNull(outbox.failedAt)))
    .prepare('tessera_outbox_pending')
  let lastPrune = 0
  while (!signal.aborted) {
    try {
      const [counts] = await pending.execute()
      ctx.metrics.outboxBacklog.set(counts?.backlog ?? 0)
      if ((counts?.due ?? 0) > 0) {
        while ((await relayOutbox(ctx)) > 0 && !signal.aborted) {}
      }
      if (Date.now() - lastPrune >= 600_000) {
        lastPrune = Date.now()
        await pruneOutbox(ctx)
      }
    } catch (error) {
      if (isPostgresUnavailable(error)) ctx.metrics.dependencyErrors.inc({ dependency: 'postgres' })
      else if (error instanceof UnavailableError) ctx.metrics.dependencyErrors.inc({ dependency: error.dependency })
      else ctx.logger.error('outbox relay failed', { error: describeError(error) })
    }
    await sleepUnlessAborted(intervalMs, signal)
  }
}
