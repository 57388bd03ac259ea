// Session tokens: 256 random bits from the CSPRNG, the SHA-256 that is all Redis ever sees, and
// the cookie value, which with several partitions also names the token's partition.

import { sha256Base64Url } from '../lib/digest'

const TOKEN_BYTES = 32
/** 32 bytes in unpadded base64url. Anything else in the cookie is rejected before Redis is asked. */
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/
/** With partitions: the partition in base 36, a dot, the token. */
const PARTITIONED_PATTERN = /^([0-9a-z]{1,2})\.([A-Za-z0-9_-]{43})$/

export function generateToken(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(TOKEN_BYTES))).toString('base64url')
}

export function isWellFormedToken(value: unknown): value is string {
  return typeof value === 'string' && TOKEN_PATTERN.test(value)
}

/** A cookie's parts: the partition its session lives in, and the token. */
export interface SessionCookie {
  partition: number
  token: string
}

/**
 * The cookie value for a token. With one partition it is the bare token, as every earlier version
 * wrote it; with several it also names the partition, so a request finds its session without a
 * lookup. That number is all a cookie reveals, and it is shared by a 1/partitions share of users.
 */
export function cookieValue(cookie: SessionCookie, partitions: number): string {
  return partitions === 1 ? cookie.token : `${cookie.partition.toString(36)}.${cookie.token}`
}

/** Reads a cookie value: validated (length, alphabet, partition in range) before Redis or a log sees it. */
export function parseCookieValue(value: unknown, partitions: number): SessionCookie | undefined {
  if (typeof value !== 'string') return undefined
  if (partitions === 1) return TOKEN_PATTERN.test(value) ? { partition: 0, token: value } : undefined
  const match = PARTITIONED_PATTERN.exec(value)
  if (!match) return undefined
  const partition = Number.parseInt(match[1] as string, 36)
  return partition < partitions ? { partition, token: match[2] as string } : undefined
}

/**
 * The Redis key and stream name of a session: the first 22 base64url characters (132 bits) of the
 * token's SHA-256. A copy of Redis therefore yields no working cookie: finding a token for a hash
 * takes about 2^132 work, and 256-bit tokens cannot be guessed, so no salt or slow hash is needed;
 * and two live sessions never share a key (a collision needs about 2^66 of them). A synchronous
 * digest (lib/digest.ts) is used: the request path waits on nothing for it.
 */
export function hashToken(token: string): string {
  return sha256Base64Url(token).slice(0, 22)
}

/** The value of cookie `name` in a Cookie header (the first, if sent twice), or undefined. */
export function cookieFromHeader(header: string | null | undefined, name: string): string | undefined {
  if (!header) return undefined
  // A scan rather than split(';'): this runs on every authenticated request.
  let at = 0
  while (at < header.length) {
    while (header.charCodeAt(at) === 32) at++
    const end = header.indexOf(';', at)
    const stop = end === -1 ? header.length : end
    const eq = header.indexOf('=', at)
    if (eq !== -1 && eq < stop && header.slice(at, eq).trim() === name) return header.slice(eq + 1, stop).trim()
    at = stop + 1
  }
  return undefined
}
