// `bun run audit:tail [--from <id>|--all]`: prints auth events live, one line each.

import { formatEvent } from '../modules/audit/format'
import { duplicateForBlocking } from '../redis/client'
import { decodeEvent } from '../redis/events'
import { createRedisKeys } from '../redis/keys'
import { connectRedisOrExit, loadConfigOrExit, onShutdown } from './shared'

const config = loadConfigOrExit()
const redis = await connectRedisOrExit(config)
const blocking = duplicateForBlocking(redis)
blocking.on('error', () => {})
const keys = createRedisKeys(config.redisKeyPrefix)
const args = process.argv.slice(2)
const from = args.includes('--from') ? args[args.indexOf('--from') + 1] : undefined
// Start at a concrete id, not `$`: re-reading from `$` after each batch would skip what arrived
// between two reads.
const [newest] = (await blocking.xrevrange(keys.events, '+', '-', 'COUNT', 1)) as [string, string[]][]
let lastId = args.includes('--all') ? '0-0' : (from ?? newest?.[0] ?? '0-0')
let stopping = false
onShutdown(async () => {
  stopping = true
  blocking.disconnect()
  redis.disconnect()
})

console.error(`tailing ${keys.events} (Ctrl-C to stop)`)
while (!stopping) {
  try {
    const reply = (await blocking.xread('COUNT', 100, 'BLOCK', 5_000, 'STREAMS', keys.events, lastId)) as
      | [string, [string, string[]][]][]
      | null
    for (const [id, fields] of reply?.[0]?.[1] ?? []) {
      const event = decodeEvent(fields)
      console.log(event ? formatEvent(event, id) : `${id} (unreadable entry)`)
      lastId = id
    }
  } catch (error) {
    if (stopping) break
    console.error(`stream unreadable, retrying: ${(error as Error).message}`)
    await Bun.sleep(1_000)
  }
}
