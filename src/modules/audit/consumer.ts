// The audit consumer: reads the event stream as a consumer group and records every entry in
// PostgreSQL, acknowledging only after the rows are committed. A crash between commit and XACK
// replays the entry, and the unique stream_id makes the replay a no-op: exactly once in effect.
// An entry PostgreSQL refuses is set aside in audit_dead_letters, so no entry can hold up the ones
// after it: only an unreachable PostgreSQL stops the consumer, and only until it is back.

import type Redis from 'ioredis'
import type { Db } from '../../db/client'
import { auditDeadLetters, auditEvents } from '../../db/schema'
import { isPostgresUnavailable, isRedisUnavailable } from '../../lib/errors'
import { describeError, type Logger } from '../../lib/logger'
import type { AuditMetrics } from '../../lib/metrics'
import { sleep } from '../../lib/sleep'
import { decodeEvent, eventText, PartitionConnection, type RedisClient, type StoreKeys } from '../../store'

export const AUDIT_GROUP = 'audit'

export interface AuditConsumerOptions {
  /** The shared client: the consumer opens a blocking connection of its own per partition. */
  redis: RedisClient
  db: Db
  keys: StoreKeys
  logger: Logger
  signal: AbortSignal
  consumer: string
  /** Entries pending this long with another (presumably dead) consumer are claimed. */
  claimIdleMs: number
  batchSize?: number
  blockMs?: number
  /** Called after each batch is committed and acknowledged (tests, metrics). */
  onBatch?: (count: number) => void
  /** Counts entries recorded and set aside, and outages. */
  metrics?: Pick<AuditMetrics, 'recorded' | 'deadLetters' | 'dependencyErrors'>
}

type Entry = [id: string, fields: string[]]

/** One partition's stream, read on its own connection. */
interface Partition {
  index: number
  stream: string
  reader: Redis
}

/**
 * The id an entry is recorded under: its stream id, and with several partitions the partition too
 * (`3/1712345678901-0`), since each partition's stream numbers its entries alone.
 */
export function auditStreamId(keys: StoreKeys, partition: number, id: string): string {
  return keys.partitions === 1 ? id : `${partition}/${id}`
}

function toRow(id: string, fields: string[]) {
  const event = decodeEvent(fields)
  if (!event) {
    // Kept, not dropped: an entry we cannot read is still part of the record.
    const raw: Record<string, string> = {}
    for (let i = 0; i + 1 < fields.length; i += 2) raw[fields[i] as string] = fields[i + 1] as string
    return { streamId: id, type: 'unreadable', at: new Date(Number(id.split('-')[0])), data: raw }
  }
  const { type, at, actorId, subjectId, ...data } = event
  return {
    streamId: id,
    type,
    at: new Date(at),
    actorId: actorId || null,
    subjectId: subjectId || null,
    data,
  }
}

type Row = ReturnType<typeof toRow>

function insertRows(db: Db, rows: Row[]) {
  return db.insert(auditEvents).values(rows).onConflictDoNothing({ target: auditEvents.streamId })
}

/** The entry as a dead letter: its fields made storable, and the exact entry as base64 of its JSON. */
function toDeadLetter(id: string, fields: string[], error: unknown) {
  const safe: Record<string, string> = {}
  for (let i = 0; i + 1 < fields.length; i += 2) {
    safe[eventText(String(fields[i]), 64)] = eventText(String(fields[i + 1]), 1024)
  }
  return {
    streamId: id,
    fields: safe,
    raw: Buffer.from(JSON.stringify(fields), 'utf8').toString('base64'),
    error: eventText(describeError(error), 1024),
  }
}

/**
 * Records a batch in one insert; when PostgreSQL refuses it for its content, row by row, so the
 * rows it refuses go to audit_dead_letters and the others are recorded as usual. An unreachable
 * database is thrown: the batch stays pending and is retried whole.
 */
async function recordRows(options: AuditConsumerOptions, live: Entry[]): Promise<number> {
  const { db, logger, metrics } = options
  const rows: [Entry, Row][] = []
  const refused: [Entry, unknown][] = []
  for (const entry of live) {
    try {
      rows.push([entry, toRow(entry[0], entry[1])])
    } catch (error) {
      refused.push([entry, error])
    }
  }
  try {
    if (rows.length > 0)
      await insertRows(
        db,
        rows.map(([, row]) => row),
      )
  } catch (error) {
    if (isPostgresUnavailable(error)) throw error
    for (const [entry, row] of rows) {
      try {
        await insertRows(db, [row])
      } catch (rowError) {
        if (isPostgresUnavailable(rowError)) throw rowError
        refused.push([entry, rowError])
      }
    }
  }
  for (const [[id, fields], error] of refused) {
    await db
      .insert(auditDeadLetters)
      .values(toDeadLetter(id, fields, error))
      .onConflictDoNothing({ target: auditDeadLetters.streamId })
    metrics?.deadLetters.inc()
    logger.warn('audit entry set aside in audit_dead_letters', { streamId: id, error: describeError(error) })
  }
  return live.length - refused.length
}

async function record(options: AuditConsumerOptions, partition: Partition, delivered: Entry[]): Promise<void> {
  // Rows carry the partition in their id; the stream's own id is what XACK takes.
  const entries = delivered.map(([id, fields]): Entry => [auditStreamId(options.keys, partition.index, id), fields])
  const live = entries.filter(([, fields]) => fields !== null)
  if (live.length < entries.length) {
    // Delivered once, then trimmed away before they were recorded: gone, and said so.
    options.logger.warn('audit entries trimmed before they were recorded', { count: entries.length - live.length })
  }
  const recorded = live.length > 0 ? await recordRows(options, live) : 0
  options.metrics?.recorded.inc(recorded)
  // Acknowledged only now that the rows are committed.
  await partition.reader.xack(partition.stream, AUDIT_GROUP, ...delivered.map(([id]) => id))
  options.onBatch?.(entries.length)
}

/** Creates the group at the start of the stream (so nothing already written is skipped). */
export async function ensureAuditGroup(redis: Pick<Redis, 'xgroup'>, stream: string): Promise<void> {
  try {
    await redis.xgroup('CREATE', stream, AUDIT_GROUP, '0', 'MKSTREAM')
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('BUSYGROUP')) throw error
  }
}

type GroupReply = [stream: string, entries: Entry[]][] | null

async function readGroup(options: AuditConsumerOptions, partition: Partition, from: '0' | '>'): Promise<Entry[]> {
  const { consumer, batchSize = 200, blockMs = 1_000 } = options
  const { reader, stream } = partition
  const args = ['GROUP', AUDIT_GROUP, consumer, 'COUNT', batchSize] as const
  const reply = (
    from === '0'
      ? await reader.xreadgroup(...args, 'STREAMS', stream, '0')
      : await reader.xreadgroup(...args, 'BLOCK', blockMs, 'STREAMS', stream, '>')
  ) as GroupReply
  return reply?.[0]?.[1] ?? []
}

/** Replays this consumer's own pending entries (delivered before a crash, never acknowledged). */
async function replayOwnPending(options: AuditConsumerOptions, partition: Partition): Promise<void> {
  for (;;) {
    const entries = await readGroup(options, partition, '0')
    if (entries.length === 0) return
    await record(options, partition, entries)
  }
}

/** Takes over entries left pending by consumers that stopped (XAUTOCLAIM) and records them. */
async function claimAbandoned(options: AuditConsumerOptions, partition: Partition): Promise<void> {
  const { consumer, claimIdleMs, batchSize = 200, logger } = options
  const { reader, stream } = partition
  let cursor = '0-0'
  do {
    const [next, entries, deleted] = (await reader.xautoclaim(
      stream,
      AUDIT_GROUP,
      consumer,
      claimIdleMs,
      cursor,
      'COUNT',
      batchSize,
    )) as [string, Entry[], string[]]
    cursor = next
    const readable = entries.filter((entry): entry is Entry => Array.isArray(entry?.[1]))
    if (readable.length > 0) await record(options, partition, readable)
    if (deleted?.length) {
      logger.warn('audit entries trimmed before they were recorded', { count: deleted.length })
      await reader.xack(stream, AUDIT_GROUP, ...deleted)
    }
  } while (cursor !== '0-0')
}

/**
 * Removes consumers that stopped: nothing pending (claimAbandoned took it over) and silent for ten
 * claim periods, while a live consumer asks for entries every block time. Without this, every
 * restart under a new name (the default is host and pid) would stay listed in the group forever.
 * A consumer removed by mistake loses nothing: it has no pending entries, and its next read
 * recreates it.
 */
async function forgetStoppedConsumers(options: AuditConsumerOptions, partition: Partition): Promise<void> {
  const { consumer, claimIdleMs, blockMs = 1_000, logger } = options
  const { reader, stream } = partition
  const silentMs = 10 * Math.max(claimIdleMs, blockMs)
  const consumers = (await reader.xinfo('CONSUMERS', stream, AUDIT_GROUP)) as (string | number)[][]
  for (const fields of consumers) {
    const info = new Map<string, string | number>()
    for (let i = 0; i + 1 < fields.length; i += 2) info.set(String(fields[i]), fields[i + 1] as string | number)
    const name = String(info.get('name'))
    if (name === consumer || Number(info.get('pending')) !== 0 || Number(info.get('idle')) < silentMs) continue
    // DELCONSUMER drops the consumer's pending entries, hence only one with none. Should it read
    // between XINFO and here, it still records what it read: only its XACK finds nothing to clear.
    await reader.xgroup('DELCONSUMER', stream, AUDIT_GROUP, name)
    logger.info('audit consumer removed from the group', { consumer: name, partition: partition.index })
  }
}

/** Runs one reader per partition until the signal aborts; the batch in hand is always finished first. */
export async function runAuditConsumer(options: AuditConsumerOptions): Promise<void> {
  await Promise.all(Array.from({ length: options.keys.partitions }, (_, index) => consumePartition(options, index)))
}

async function consumePartition(options: AuditConsumerOptions, index: number): Promise<void> {
  const { redis, keys, logger, signal, claimIdleMs } = options
  const stream = keys.events(index)
  // Not dropped on abort: the blocking read returns within blockMs, and the batch in hand is
  // recorded and acknowledged before the loop sees the signal.
  const connection = new PartitionConnection(redis, stream)
  let ready = false
  let lastClaim = 0
  while (!signal.aborted) {
    try {
      const partition: Partition = { index, stream, reader: await connection.get() }
      if (!ready) {
        await ensureAuditGroup(partition.reader, stream)
        await replayOwnPending(options, partition)
        ready = true
      }
      if (Date.now() - lastClaim >= Math.max(1_000, claimIdleMs / 2)) {
        await claimAbandoned(options, partition)
        await forgetStoppedConsumers(options, partition)
        lastClaim = Date.now()
      }
      const entries = await readGroup(options, partition, '>')
      if (entries.length > 0) await record(options, partition, entries)
    } catch (error) {
      if (signal.aborted) break
      ready = false
      connection.reset()
      const dependency = isPostgresUnavailable(error) ? 'postgres' : isRedisUnavailable(error) ? 'redis' : undefined
      if (dependency) options.metrics?.dependencyErrors.inc({ dependency })
      logger.warn('audit consumer retrying', { partition: index, error: describeError(error) })
      await sleep(500)
    }
  }
  connection.reset()
}

/**
 * The consumer group's position over every partition (XINFO GROUPS): entries not yet delivered to
 * it (Redis's own `lag`, counted from the entries it has read) and entries delivered but not yet
 * acknowledged. A partition whose group does not exist yet counts its whole stream as lag.
 */
export async function auditGroupState(redis: RedisClient, keys: StoreKeys): Promise<{ lag: number; pending: number }> {
  const streams = Array.from({ length: keys.partitions }, (_, index) => keys.events(index))
  const states = await Promise.all(
    streams.map(async (stream) => {
      const groups = (await redis.xinfo('GROUPS', stream).catch(() => [])) as (string | number | null)[][]
      const group = groups.map(fieldsOf).find((fields) => fields.name === AUDIT_GROUP)
      if (!group) return { lag: await redis.xlen(stream), pending: 0 }
      return { lag: Number(group.lag ?? 0), pending: Number(group.pending ?? 0) }
    }),
  )
  return states.reduce((sum, state) => ({ lag: sum.lag + state.lag, pending: sum.pending + state.pending }), {
    lag: 0,
    pending: 0,
  })
}

function fieldsOf(reply: (string | number | null)[]): Record<string, string | number | null> {
  const fields: Record<string, string | number | null> = {}
  for (let i = 0; i + 1 < reply.length; i += 2) fields[String(reply[i])] = reply[i + 1] ?? null
  return fields
}
