// Failed-login limits shared by every instance through Redis: per account, per account and client,
// and per client. Only failures count, and a success clears the account-and-client counter. Every
// attempt is counted before the password is checked and given back if it succeeds, so a burst of
// parallel guesses meets the limit as surely as a sequence does.
//
// Malicious lockout: the per-account-and-client limit is the low one, so an attacker hammering a
// victim's account locks out only themselves. The per-account limit across all clients is ten
// times higher; it stops a distributed guess at one account, and only then is the victim affected.

import type { AppContext } from '../../context'
import { limitSubject } from '../../lib/client-address'
import { sha256Base64Url } from '../../lib/digest'
import { AppError } from '../../lib/errors'
import type { RedisClient } from '../../store'
import releaseLogin from './lua/release-login.lua' with { type: 'text' }
import reserveLogin from './lua/reserve-login.lua' with { type: 'text' }
import reserveOne from './lua/reserve-one.lua' with { type: 'text' }

// Usernames and addresses are personal data: keys carry a truncated hash, never the value.
const digest = (value: string) => sha256Base64Url(value).slice(0, 22)

/** The three counters of one attempt, in script order. */
export type LoginLimitKeys = readonly [account: string, accountAndClient: string, client: string]

/**
 * The counters an attempt by `username` (normalised: normalizeUsername, or the raw text of a name
 * that cannot exist) from `ip` counts against; computed once per attempt.
 */
export function loginLimitKeys(ctx: AppContext, username: string, ip: string): LoginLimitKeys {
  const { keys } = ctx.store
  const user = digest(username)
  const client = clientDigest(ctx, ip)
  return [keys.loginFailuresAccount(user), keys.loginFailuresAccountIp(user, client), keys.loginFailuresIp(client)]
}

/** A client address as the limits count it (an IPv6 address by its prefix), hashed. */
const clientDigest = (ctx: AppContext, ip: string) => digest(limitSubject(ip, ctx.config.rateLimitIpv6PrefixBits))

function limits(ctx: AppContext) {
  const perAccount = ctx.config.loginMaxFailuresPerAccount
  return { accountIp: perAccount, account: perAccount * 10, ip: ctx.config.loginMaxFailuresPerIp }
}

// The limiter's own scripts, beside the store's and independent of them. Their keys all carry the
// limiter's hash tag (keys.ts), so on a cluster each call runs in one slot.
const SCRIPTS = { reserveLogin, releaseLogin, reserveOne } as const
type ScriptName = keyof typeof SCRIPTS
const defined = new WeakSet<RedisClient>()

/**
 * Defines the limiter's scripts on a client; createContext calls it, before any request. Defining
 * one later is unsafe: an auto-pipeline opened before the definition does not know the command,
 * refuses it, and ioredis then throws from a later turn, which ends the process (a fresh instance's
 * first login under load: https://github.com/redis/ioredis/issues/1931).
 */
export function defineLimitScripts(redis: RedisClient): void {
  if (defined.has(redis)) return
  for (const [script, lua] of Object.entries(SCRIPTS)) redis.defineCommand(`tessera_limit_${script}`, { lua })
  defined.add(redis)
}

function runLimitScript(
  ctx: AppContext,
  name: ScriptName,
  keys: readonly string[],
  args: readonly (string | number)[],
) {
  const command = (
    ctx.redis as unknown as Record<string, ((n: number, ...rest: (string | number)[]) => Promise<unknown>) | undefined>
  )[`tessera_limit_${name}`]
  if (!command) throw new TypeError(`limiter script ${name} is not defined on this client (defineLimitScripts)`)
  return command.call(ctx.redis, keys.length, ...keys, ...args)
}

/** The 429 of a refused attempt, with how long until the limit lets the next one through. */
export const tooManyAttempts = (waitMs: number) =>
  new AppError('too_many_attempts', { headers: { 'retry-after': String(Math.max(1, Math.ceil(waitMs / 1000))) } })

/** A refused attempt: how long to wait, and whether it is the first refusal of its window. */
export interface Refusal {
  waitMs: number
  first: boolean
}

/**
 * Counts the attempt as a failure in advance, unless a failure counter for it is at its limit: then
 * it is refused, uncounted, and the refusal returned. Give a counted attempt back with
 * releaseLoginAttempt when it succeeds or ends for a reason other than the credentials.
 */
export async function reserveLoginAttempt(ctx: AppContext, keys: LoginLimitKeys): Promise<Refusal | undefined> {
  const max = limits(ctx)
  const notices = keys.map((key) => ctx.store.keys.limitNoticed(key))
  const [waitMs, first] = (await runLimitScript(
    ctx,
    'reserveLogin',
    [...keys, ...notices],
    [max.account, max.accountIp, max.ip, ctx.config.loginFailureWindowMs],
  )) as [number, number]
  return waitMs > 0 ? { waitMs, first: first === 1 } : undefined
}

/**
 * Registration costs an argon2 hash and a row: every attempt from one client (an IPv6 client by its
 * prefix) counts, success or not, and past REGISTRATION_MAX_PER_IP in REGISTRATION_WINDOW the
 * answer is 429 before any hashing.
 */
export async function reserveRegistration(ctx: AppContext, ip: string): Promise<void> {
  const key = ctx.store.keys.registrationsIp(clientDigest(ctx, ip))
  const waitMs = (await runLimitScript(
    ctx,
    'reserveOne',
    [key],
    [ctx.config.registrationMaxPerIp, ctx.config.registrationWindowMs],
  )) as number
  if (waitMs > 0) throw tooManyAttempts(waitMs)
}

/** Un-counts a reserved attempt; after a success also clears the account-and-client counter. */
export async function releaseLoginAttempt(ctx: AppContext, keys: LoginLimitKeys, succeeded: boolean): Promise<void> {
  await runLimitScript(ctx, 'releaseLogin', [...keys], [succeeded ? '1' : '0'])
}
