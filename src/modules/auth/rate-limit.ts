// Failed-login limits shared by every instance through Redis: per account, per account and client,
// and per client. Only failures count, and a success clears the account-and-client counter.
//
// Malicious lockout: the per-account-and-client limit is the low one, so an attacker hammering a
// victim's account locks out only themselves. The per-account limit across all clients is ten
// times higher; it stops a distributed guess at one account, and only then is the victim affected.

import { createHash } from 'node:crypto'
import type { AppContext } from '../../context'
import { AppError } from '../../lib/errors'

// Usernames and addresses are personal data: keys carry a truncated hash, never the value.
const digest = (value: string) => createHash('sha256').update(value).digest('base64url').slice(0, 22)

function limitKeys(ctx: AppContext, username: string, ip: string) {
  const { keys } = ctx.store
  const user = digest(username.toLowerCase())
  const client = digest(ip || 'unknown')
  return {
    account: keys.loginFailuresAccount(user),
    accountIp: keys.loginFailuresAccountIp(user, client),
    ip: keys.loginFailuresIp(client),
  }
}

function limits(ctx: AppContext) {
  const perAccount = ctx.config.loginMaxFailuresPerAccount
  return { accountIp: perAccount, account: perAccount * 10, ip: ctx.config.loginMaxFailuresPerIp }
}

/** Throws 429 with Retry-After when any failure counter for this attempt is at its limit. */
export async function assertLoginAllowed(ctx: AppContext, username: string, ip: string): Promise<void> {
  const k = limitKeys(ctx, username, ip)
  const max = limits(ctx)
  const [account, accountIp, client] = (await ctx.redis.mget(k.account, k.accountIp, k.ip)).map(Number)
  const over: string[] = []
  if ((accountIp ?? 0) >= max.accountIp) over.push(k.accountIp)
  if ((account ?? 0) >= max.account) over.push(k.account)
  if ((client ?? 0) >= max.ip) over.push(k.ip)
  if (over.length === 0) return
  const ttls = await Promise.all(over.map((key) => ctx.redis.pttl(key)))
  const retryAfter = Math.max(1, Math.ceil(Math.max(...ttls) / 1000))
  throw new AppError(429, 'too_many_attempts', 'Too many failed logins; try again later.', {
    'retry-after': String(retryAfter),
  })
}

export async function recordLoginFailure(ctx: AppContext, username: string, ip: string): Promise<void> {
  const k = limitKeys(ctx, username, ip)
  const window = String(ctx.config.loginFailureWindowMs)
  const multi = ctx.redis.multi()
  for (const key of [k.account, k.accountIp, k.ip]) {
    multi.incr(key)
    // NX: the window starts at the first failure and is not pushed back by later ones.
    multi.pexpire(key, window, 'NX')
  }
  await multi.exec()
}

export async function clearLoginFailures(ctx: AppContext, username: string, ip: string): Promise<void> {
  await ctx.redis.del(limitKeys(ctx, username, ip).accountIp)
}
