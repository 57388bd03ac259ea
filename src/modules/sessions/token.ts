// Session tokens: 256 random bits from the CSPRNG, and the SHA-256 that is all Redis ever sees.

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
 * The Redis key and stream name of a session: SHA-256 truncated to 128 bits (22 characters). A
 * copy of Redis therefore yields no working cookie: finding a token for a hash takes 2^128 work,
 * and 256-bit tokens cannot be guessed, so no salt or slow hash is needed. 128 bits also keep two
 * live sessions from ever sharing a key (a collision needs about 2^64 of them).
 */
export async function hashToken(token: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token))
  return toBase64Url(new Uint8Array(digest, 0, 16))
}
