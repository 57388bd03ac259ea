// Session reads issued in the same event-loop turn travel as one MGET, and each caller still gets
// its own key's value (or its own failure).

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import type Redis from 'ioredis'
import { connectRedis, createRedis } from '../src/store'
import { createBatchedGet } from '../src/store/batched-get'
import { deleteKeys, freePort, REDIS_URL } from './helpers'

const prefix = `test:batched-get:${Date.now().toString(36)}:`
let redis: Redis
const commands: string[][] = []

beforeAll(async () => {
  redis = createRedis(REDIS_URL)
  const send = redis.sendCommand.bind(redis)
  redis.sendCommand = ((command: { name: string; args: unknown[] }, stream?: unknown) => {
    commands.push([command.name, ...command.args.map(String)])
    return send(command as never, stream as never)
  }) as typeof redis.sendCommand
  await connectRedis(redis)
  await redis.mset(`${prefix}a`, 'one', `${prefix}b`, 'two', `${prefix}c`, 'three')
})
afterAll(async () => {
  await deleteKeys(redis, prefix)
  await redis.quit()
})

describe('createBatchedGet', () => {
  test('reads of one turn share one MGET; each gets its own value, a missing key null', async () => {
    const get = createBatchedGet(redis)
    commands.length = 0
    const values = await Promise.all(['a', 'missing', 'c', 'b', 'a'].map((name) => get(`${prefix}${name}`)))
    expect(values).toEqual(['one', null, 'three', 'two', 'one'])
    expect(commands).toEqual([['mget', ...['a', 'missing', 'c', 'b', 'a'].map((name) => `${prefix}${name}`)]])
  })

  test('reads of later turns go in later commands', async () => {
    const get = createBatchedGet(redis)
    commands.length = 0
    expect(await get(`${prefix}a`)).toBe('one')
    expect(await get(`${prefix}b`)).toBe('two')
    expect(commands.map(([name]) => name)).toEqual(['mget', 'mget'])
  })

  test('a full batch is sent at once and the rest follows in the next command', async () => {
    const get = createBatchedGet(redis, 2)
    commands.length = 0
    const values = await Promise.all(['a', 'b', 'c', 'a', 'b'].map((name) => get(`${prefix}${name}`)))
    expect(values).toEqual(['one', 'two', 'three', 'one', 'two'])
    expect(commands.map((command) => command.length - 1)).toEqual([2, 2, 1])
  })

  test('a failed MGET fails every read in it, and only those', async () => {
    // A Redis nobody listens on: with the offline queue off, every command fails at once.
    const dead = createRedis(`redis://127.0.0.1:${freePort()}`)
    dead.on('error', () => {})
    try {
      const get = createBatchedGet(dead)
      const outcomes = await Promise.allSettled([get(`${prefix}a`), get(`${prefix}b`)])
      expect(outcomes.map((outcome) => outcome.status)).toEqual(['rejected', 'rejected'])
      const live = createBatchedGet(redis)
      expect(await live(`${prefix}c`)).toBe('three')
    } finally {
      dead.disconnect()
    }
  })
})
