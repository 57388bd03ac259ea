// The transactional outbox: changes committed in PostgreSQL that must still reach Redis.
//
// A grant, a revoke or a disabled user is written with an outbox row in the same transaction. The
// row is relayed at once after the commit and, should Redis be down, by a loop on every instance
// until it is applied. Every Redis-side step is idempotent per row id (see store.ts), so a relay
// that dies between applying and marking the row changes nothing the second time.

import { and, asc, eq, inArray, isNull, sql } from 'drizzle-orm'
import type { AppContext } from '../../context'
import type { Db, Tx } from '../../db/client'
import { outbox } from '../../db/schema'
import { isPostgresUnavailable, isRedisUnavailable } from '../../lib/errors'
import { describeError } from '../../lib/logger'
import { appendEventOnce, type EventInput, revokeUserSessions, setUserPermissions } from '../sessions/store'

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
}

/**
 * Applies pending rows (or the given ones) in id order. Rows locked by another relayer are waited
 * for when named (so a request's own change is in Redis before it answers) and skipped otherwise.
 * Returns how many were applied; stops at the first Redis failure and leaves the rest pending.
 */
export async function relayOutbox(ctx: AppContext, ids?: number[], limit = 100): Promise<number> {
  return ctx.db.transaction(async (tx) => {
    const pending = isNull(outbox.appliedAt)
    const query = tx
      .select({ id: outbox.id, payload: outbox.payload })
      .from(outbox)
      .where(ids ? and(pending, inArray(outbox.id, ids)) : pending)
      .orderBy(asc(outbox.id))
      .limit(limit)
    const rows = ids ? await query.for('update') : await query.for('update', { skipLocked: true })
    let applied = 0
    for (const row of rows) {
      try {
        await applyMessage(ctx, row.id, row.payload as OutboxMessage)
      } catch (error) {
        await tx
          .update(outbox)
          .set({ attempts: sql`${outbox.attempts} + 1` })
          .where(eq(outbox.id, row.id))
        if (isRedisUnavailable(error)) break
        ctx.logger.error('outbox message failed', { outboxId: row.id, error: describeError(error) })
        continue
      }
      await tx.update(outbox).set({ appliedAt: new Date() }).where(eq(outbox.id, row.id))
      applied++
    }
    return applied
  })
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

/** Polls for pending rows until the signal aborts. */
export async function runOutboxRelay(ctx: AppContext, signal: AbortSignal, intervalMs = 1_000): Promise<void> {
  // Almost every poll finds nothing: one indexed read (the partial index on pending rows) decides
  // whether a transaction is worth opening.
  const anyPending = ctx.db
    .select({ id: outbox.id })
    .from(outbox)
    .where(isNull(outbox.appliedAt))
    .limit(1)
    .prepare('tessera_outbox_pending')
  while (!signal.aborted) {
    try {
      if ((await anyPending.execute()).length > 0) {
        while ((await relayOutbox(ctx)) > 0 && !signal.aborted) {}
      }
    } catch (error) {
      if (!isPostgresUnavailable(error) && !isRedisUnavailable(error)) {
        ctx.logger.error('outbox relay failed', { error: describeError(error) })
      }
    }
    await Bun.sleep(intervalMs)
  }
}
