// Runs a Lua script by its SHA1, loading it on first use (or after a SCRIPT FLUSH / failover).

import { createHash } from 'node:crypto'
import type Redis from 'ioredis'

export interface Script {
  readonly source: string
  readonly sha: string
}

export function defineScript(source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') }
}

export async function runScript(
  redis: Redis,
  script: Script,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  try {
    return await redis.evalsha(script.sha, keys.length, ...keys, ...args)
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error
    return redis.eval(script.source, keys.length, ...keys, ...args)
  }
}
