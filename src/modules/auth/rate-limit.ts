// Failed-login limits shared by every instance through Redis: per account, per account and client,
// and per client. Only failures count, and a success clears the account-and-client counter. Every
// attempt is counted before the password is checked and given back if it succeeds, so a burst of
// parallel guesses meets the limit as surely as a sequence does.
//
// Malicious lockout: the per-account-and-client limit is the low one, so an attacker hammering a
// victim's account locks out only themselves. The per-account limit across all clients is ten
// times higher; it stops a distributed guess at one account, and only then is the victim affected.

import type { AppContext } from '../../context'
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
  const client = digest(ip || 'unknown')
  return [keys.loginFailuresAccount(user), keys.loginFailuresAccountIp(user, client), keys.loginFailuresIp(client)]
}

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

// KEYS: account, account+client, client; ARGV: their limits, then the window in ms. The check and
// the count are one step: attempts sent in parallel cannot all pass the check before any is counted.
// Counting first and taking the attempt back when a limit is passed keeps the common path to one
// command per counter: a new counter is created with its window (SET NX PX), an existing one counted
// (INCR); a later failure never pushes the window back.
const RESERVE = defineScript(`
local counts = {}
for i = 1, 3 do
  if redis.call('SET', KEYS[i], '1', 'PX', ARGV[4], 'NX') then counts[i] = 1
  else counts[i] = redis.call('INCR', KEYS[i]) end
end
local wait = 0
for i = 1, 3 do
  if counts[i] > tonumber(ARGV[i]) then wait = math.max(wait, redis.call('PTTL', KEYS[i]), 1) end
end
if wait > 0 then
  -- Refused: this attempt is not counted.
  for i = 1, 3 do
    if counts[i] == 1 then redis.call('DEL', KEYS[i]) else redis.call('DECR', KEYS[i]) end
  end
end
return wait
`)

// KEYS as above; ARGV[1] is 1 after a success, which also clears the account-and-client counter.
const RELEASE = defineScript(`
${uncount(1)}
if ARGV[1] == '1' then redis.call('DEL', KEYS[2]) else ${uncount(2)} end
${uncount(3)}
return 0
`)

/**
 * Throws 429 with Retry-After when any failure counter for this attempt is at its limit; otherwise
 * counts the attempt as a failure in advance. Give it back with releaseLoginAttempt when it
 * succeeds or ends for a reason other than the credentials.
 */
export async function reserveLoginAttempt(ctx: AppContext, keys: LoginLimitKeys): Promise<void> {
  const max = limits(ctx)
  const waitMs = (await runScript(
    ctx.redis,
    RESERVE,
    [...keys],
    [max.account, max.accountIp, max.ip, ctx.config.loginFailureWindowMs],
  )) as number
  if (waitMs <= 0) return
  throw new AppError('too_many_attempts', {
    headers: { 'retry-after': String(Math.max(1, Math.ceil(waitMs / 1000))) },
  })
}

/** Un-counts a reserved attempt; after a success also clears the account-and-client counter. */
export async function releaseLoginAttempt(ctx: AppContext, keys: LoginLimitKeys, succeeded: boolean): Promise<void> {
  await runScript(ctx.redis, RELEASE, [...keys], [succeeded ? '1' : '0'])
}
