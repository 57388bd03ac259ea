// `tessera audit tail [--from <id>|--all]` (`bun run audit:tail`): prints auth events live, one
// line each, from every partition's stream as one history (history in time order; live events as
// they arrive, which keeps each user's events in order).

import { storeFor } from '../context'
import { auditStreamId } from '../modules/audit/consumer'
import { formatEvent } from '../modules/audit/format'
import { compareStreamIds } from '../modules/events/tailer'
import { decodeEvent, PartitionConnection, type RedisClient, type SessionStore } from '../store'
import { connectRedisOrExit, loadConfigOrExit, onShutdown } from './shared'

type Entry = [id: string, fields: string[]]

export interface TailOptions {
  /** Start after this entry id (in every partition's stream) instead of at the newest entry. */
  from?: string
  /** Start at the beginning of the streams. */
  all?: boolean
}

/** The streams being tailed: one connection per partition, for its blocking reads. */
interface Tail {
  redis: RedisClient
  keys: SessionStore['keys']
  connections: PartitionConnection[]
  stopping: boolean
}

/** Prints events until SIGTERM or SIGINT. It only reads: no consumer group, nothing acknowledged. */
export async function tailEvents({ from, all = false }: TailOptions): Promise<void> {
  const config = loadConfigOrExit()
  const redis = await connectRedisOrExit(config)
  const { keys } = storeFor(config, redis)
  const tail: Tail = {
    redis,
    keys,
    connections: Array.from({ length: keys.partitions }, (_, p) => new PartitionConnection(redis, keys.events(p))),
    stopping: false,
  }
  onShutdown(async () => {
    tail.stopping = true
    for (const connection of tail.connections) connection.reset()
    redis.disconnect()
  })

  const positions = await startingPoints(tail, { from, all })
  console.error(
    `tailing ${keys.partitions === 1 ? keys.events(0) : `${keys.partitions} partition streams`} (Ctrl-C to stop)`,
  )
  if (all || from) await printHistory(tail, positions)
  await Promise.all(positions.map((position, partition) => follow(tail, partition, position)))
}

function print(tail: Tail, partition: number, [id, fields]: Entry): void {
  const event = decodeEvent(fields)
  const shown = auditStreamId(tail.keys, partition, id)
  console.log(event ? formatEvent(event, shown) : `${shown} (unreadable entry)`)
}

/** Where each partition starts: its newest entry now (live only), or the id asked for. */
async function startingPoints(tail: Tail, { from, all }: TailOptions): Promise<string[]> {
  return Promise.all(
    tail.connections.map(async (connection) => {
      if (all) return '0-0'
      if (from) return from
      // A concrete id, not `$`: re-reading from `$` after each batch would skip what arrived between.
      const [newest] = (await tail.redis.xrevrange(connection.key, '+', '-', 'COUNT', 1)) as Entry[]
      return newest?.[0] ?? '0-0'
    }),
  )
}

/** Prints what the streams already hold after `positions`, merged in time order; advances them. */
async function printHistory(tail: Tail, positions: string[]): Promise<void> {
  const { redis, connections } = tail
  const pages: Entry[][] = await Promise.all(
    connections.map((c, p) => redis.xrange(c.key, `(${positions[p]}`, '+', 'COUNT', 500) as Promise<Entry[]>),
  )
  for (;;) {
    let next = -1
    for (let p = 0; p < pages.length; p++) {
      const head = pages[p]?.[0]
      if (head && (next < 0 || compareStreamIds(head[0], pages[next]?.[0]?.[0] ?? '') < 0)) next = p
    }
    if (next < 0) return
    const page = pages[next] as Entry[]
    const entry = page.shift() as Entry
    print(tail, next, entry)
    positions[next] = entry[0]
    if (page.length === 0) {
      pages[next] = (await redis.xrange(connections[next]?.key ?? '', `(${entry[0]}`, '+', 'COUNT', 500)) as Entry[]
    }
  }
}

async function follow(tail: Tail, partition: number, position: string): Promise<void> {
  const connection = tail.connections[partition] as PartitionConnection
  let lastId = position
  while (!tail.stopping) {
    try {
      const reader = await connection.get()
      const reply = (await reader.xread('COUNT', 100, 'BLOCK', 5_000, 'STREAMS', connection.key, lastId)) as
        | [string, Entry[]][]
        | null
      for (const entry of reply?.[0]?.[1] ?? []) {
        print(tail, partition, entry)
        lastId = entry[0]
      }
    } catch (error) {
      if (tail.stopping) break
      connection.reset()
      console.error(`stream unreadable, retrying: ${(error as Error).message}`)
      await Bun.sleep(1_000)
    }
  }
}
