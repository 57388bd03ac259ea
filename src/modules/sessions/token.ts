// Session tokens: 256 random bits from the CSPRNG, and the SHA-256 that is all Redis ever sees.

import { sha256Base64Url } from '../../lib/digest'

const TOKEN_BYTES = 32
/** 32 bytes in unpadded base64url. Anything else in the cookie is rejected before Redis is asked. */
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/

function toBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url')
}

export function generateToken(): string {
  return toBase64Url(crypto.getRandomValues(new Uint8Array(TOKEN_BYTES)))
}

export function isWellFormedToken(value: unknown): value is string {
  return typeof value === 'string' && TOKEN_PATTERN.test(value)
}

/**
 * The Redis key and stream name of a session: the first 22 base64url characters (132 bits) of the
 * token's SHA-256. A copy of Redis therefore yields no working cookie: finding a token for a hash
 * takes about 2^132 work, and 256-bit tokens cannot be guessed, so no salt or slow hash is needed;
 * and two live sessions never share a key (a collision needs about 2^66 of them). A synchronous
 * digest (lib/digest.ts) is used for speed: a fraction of Web Crypto's asynchronous one.
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
