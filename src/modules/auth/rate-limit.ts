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
import { defineScript, runScript } from '../../redis/script'

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

// Un-counts one attempt on the counter KEYS[i]. A counter that reaches zero is removed rather than
// kept at 0, and one that expired meanwhile (DECR made it -1) is removed too: no counter is ever left
// without its TTL, and the next failure starts a new window.
const uncount = (i: number) => `if redis.call('DECR', KEYS[${i}]) <= 0 then redis.call('DEL', KEYS[${i}]) end`

/**
 * Lua that gives back a successful attempt whose three counters are KEYS[first..first+2], when
 * they were passed (see createSession): the account and client counters un-counted, the
 * account-and-client one cleared.
 */
export const RELEASE_AFTER_SUCCESS_LUA = (first: number) => `
if #KEYS >= ${first + 2} then
  ${uncount(first)}
  redis.call('DEL', KEYS[${first + 1}])
  ${uncount(first + 2)}
end
`

function limits(ctx: AppContext) {
  const perAccount = ctx.config.loginMaxFailuresPerAccount
  return { accountIp: perAccount, account: perAccount * 10, ip: ctx.config.loginMaxFailuresPerIp }
}

// KEYS: account, account+client, client, then a "refusal noticed" marker for each; ARGV: their
// limits, then the window in ms. The check and the count are one step: attempts sent in parallel
// cannot all pass the check before any is counted. Counting first and taking the attempt back when
// a limit is passed keeps the common path to one command per counter: a new counter is created
// with its window (SET NX PX), an existing one counted (INCR); a later failure never pushes the
// window back. A refusal sets its counter's marker for the rest of the window, so only the first
// refusal of a window is announced (returned as the second value); later ones are only counted.
const RESERVE = defineScript(`
local counts = {}
for i = 1, 3 do
  if redis.call('SET', KEYS[i], '1', 'PX', ARGV[4], 'NX') then counts[i] = 1
  else counts[i] = redis.call('INCR', KEYS[i]) end
end
local wait, first = 0, 0
for i = 1, 3 do
  if counts[i] > tonumber(ARGV[i]) then
    local ttl = math.max(redis.call('PTTL', KEYS[i]), 1)
    wait = math.max(wait, ttl)
    if redis.call('SET', KEYS[i + 3], '1', 'PX', ttl, 'NX') then first = 1 end
  end
end
if wait > 0 then
  -- Refused: this attempt is not counted.
  for i = 1, 3 do
    if counts[i] == 1 then redis.call('DEL', KEYS[i]) else redis.call('DECR', KEYS[i]) end
  end
end
return { wait, first }
`)

// KEYS as above; ARGV[1] is 1 after a success, which also clears the account-and-client counter.
const RELEASE = defineScript(`
${uncount(1)}
if ARGV[1] == '1' then redis.call('DEL', KEYS[2]) else ${uncount(2)} end
${uncount(3)}
return 0
`)

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
  const [waitMs, first] = (await runScript(
    ctx.redis,
    RESERVE,
    [...keys, ...notices],
    [max.account, max.accountIp, max.ip, ctx.config.loginFailureWindowMs],
  )) as [number, number]
  return waitMs > 0 ? { waitMs, first: first === 1 } : undefined
}

// KEYS: one counter; ARGV: its limit, the window in ms. Counted first, given back when over.
const RESERVE_ONE = defineScript(`
local n
if redis.call('SET', KEYS[1], '1', 'PX', ARGV[2], 'NX') then n = 1 else n = redis.call('INCR', KEYS[1]) end
if n <= tonumber(ARGV[1]) then return 0 end
redis.call('DECR', KEYS[1])
return math.max(redis.call('PTTL', KEYS[1]), 1)
`)

/**
 * Registration costs an argon2 hash and a row: every attempt from one client (an IPv6 client by its
 * prefix) counts, success or not, and past REGISTRATION_MAX_PER_IP in REGISTRATION_WINDOW the
 * answer is 429 before any hashing.
 */
export async function reserveRegistration(ctx: AppContext, ip: string): Promise<void> {
  const key = ctx.store.keys.registrationsIp(clientDigest(ctx, ip))
  const waitMs = (await runScript(
    ctx.redis,
    RESERVE_ONE,
    [key],
    [ctx.config.registrationMaxPerIp, ctx.config.registrationWindowMs],
  )) as number
  if (waitMs > 0) throw tooManyAttempts(waitMs)
}

/** Un-counts a reserved attempt; after a success also clears the account-and-client counter. */
export async function releaseLoginAttempt(ctx: AppContext, keys: LoginLimitKeys, succeeded: boolean): Promise<void> {
  await runScript(ctx.redis, RELEASE, [...keys], [succeeded ? '1' : '0'])
}
