// The store's Lua scripts, one .lua file each (lua/), defined on a client with ioredis's
// defineCommand: it runs them by SHA and loads them again when Redis has lost them (a restart, a
// failover, SCRIPT FLUSH). Every key a script touches is passed in KEYS, so Redis Cluster routes
// the call to the slot that holds them, and a script never reaches outside it.

import type { RedisClient } from './client'
import appendOnce from './lua/append-once.lua' with { type: 'text' }
import create from './lua/create.lua' with { type: 'text' }
import deleteSession from './lua/delete.lua' with { type: 'text' }
import endByToken from './lua/end-by-token.lua' with { type: 'text' }
import prelude from './lua/prelude.lua' with { type: 'text' }
import reauthenticate from './lua/reauthenticate.lua' with { type: 'text' }
import revokeUser from './lua/revoke-user.lua' with { type: 'text' }
import rotate from './lua/rotate.lua' with { type: 'text' }
import setPermissions from './lua/set-permissions.lua' with { type: 'text' }
import touch from './lua/touch.lua' with { type: 'text' }

const SOURCES = {
  create,
  touch,
  delete: deleteSession,
  endByToken,
  rotate,
  revokeUser,
  setPermissions,
  reauthenticate,
  appendOnce,
} as const

export type ScriptName = keyof typeof SOURCES

/** The Lua each script runs: the shared prelude, then its own file. */
export const SCRIPT_LUA: Readonly<Record<ScriptName, string>> = Object.freeze(
  Object.fromEntries(Object.entries(SOURCES).map(([name, body]) => [name, `${prelude}\n${body}`])) as Record<
    ScriptName,
    string
  >,
)

const commandName = (name: ScriptName) => `tessera_${name}`
const defined = new WeakSet<RedisClient>()

/** Defines every script on a client, once (the number of keys varies, so it is passed per call). */
export function defineScripts(redis: RedisClient): void {
  if (defined.has(redis)) return
  for (const name of Object.keys(SCRIPT_LUA) as ScriptName[]) {
    redis.defineCommand(commandName(name), { lua: SCRIPT_LUA[name] })
  }
  defined.add(redis)
}

type ScriptCommand = (numberOfKeys: number, ...keysAndArgs: (string | number)[]) => Promise<unknown>

/** Runs a script defined by defineScripts with these keys and arguments. */
export function runScript(
  redis: RedisClient,
  name: ScriptName,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  const command = (redis as unknown as Record<string, ScriptCommand>)[commandName(name)]
  if (!command) throw new TypeError(`store script ${name} is not defined on this client (defineScripts)`)
  return command.call(redis, keys.length, ...keys, ...args)
}
