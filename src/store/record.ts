// The session record as Redis stores it: one short string per session, packed to stay small.
//
// A live session costs one key. Its value is `uid|username|perms|expires|idle|age|ip|ua|auth`:
// numbers in base 36; last-seen, created and last proof of password as milliseconds back from the
// absolute expiry (short numbers);
// permissions as a bit mask over the catalogue; the user agent as a reference into a shared table
// of user agents (most sessions share a handful of browsers). At about 60 bytes the value fits one
// small allocation; a hash with one field per item needs more than twice that. Pure functions
// only: the verifier that other services import uses this module.

import { sha256Base64Url } from '../lib/digest'
import { PERMISSION_NAMES } from '../modules/permissions/catalogue'

export interface Session {
  /** The partition its keys live in (partitions.ts): the one its cookie names. */
  partition: number
  /** Truncated SHA-256 of the token; names the Redis key. Never shown to users. */
  tokenHash: string
  /** Shown in session listings; derived one-way from tokenHash, so it leads back to neither. */
  publicId: string
  userId: number
  username: string
  permissions: string[]
  createdAt: number
  lastSeenAt: number
  /** Absolute expiry, ms since the epoch. */
  expiresAt: number
  ip: string
  /** Filled in only where it is shown (listings); empty on the authentication path. */
  userAgent: string
  /** Key of the user agent in the shared table ('' when the client sent none). */
  userAgentRef: string
  /** When the session last proved the password (login, re-authentication, password change). */
  authenticatedAt: number
}

/** 1-based positions of the record's parts; the Lua scripts (lua/*.lua) address them by these numbers. */
export const PART = {
  userId: 1,
  permissions: 3,
  expires: 4,
  lastSeenBack: 5,
  createdBack: 6,
  authenticatedBack: 9,
} as const

export const toBase36 = (n: number) => Math.floor(n).toString(36)

/**
 * Permissions as a bit mask over the catalogue's order. The catalogue is append-only for this
 * reason: a permission's bit never changes meaning.
 */
export function encodePermissions(names: readonly string[]): string {
  let mask = 0
  for (const name of names) {
    const bit = PERMISSION_NAMES.indexOf(name as (typeof PERMISSION_NAMES)[number])
    if (bit >= 0) mask |= 1 << bit
  }
  return mask.toString(36)
}

export function decodePermissions(mask36: string): string[] {
  const mask = Number.parseInt(mask36 || '0', 36)
  return PERMISSION_NAMES.filter((_, bit) => (mask & (1 << bit)) !== 0)
}

export function publicIdFor(tokenHash: string): string {
  return sha256Base64Url(`tessera:public-session-id:${tokenHash}`).slice(0, 16)
}

// User agents reach listings, logs and Redis, so they are input: printable ASCII only, bounded.
const MAX_USER_AGENT = 256

export function sanitizeUserAgent(value: string | null | undefined): string {
  return (value ?? '').replace(/[^\x20-\x7e]/g, '?').slice(0, MAX_USER_AGENT)
}

/** 48 bits of SHA-256: distinct user agents would need millions of kinds to collide. */
export function userAgentRef(userAgent: string): string {
  return userAgent ? sha256Base64Url(userAgent).slice(0, 8) : ''
}

export interface RecordFields {
  userId: number
  username: string
  createdAt: number
  lastSeenAt: number
  expiresAt: number
  ip: string
  userAgentRef: string
  authenticatedAt: number
}

/**
 * The record around its permissions: Lua splices in the permission mask, which it may take from a
 * newer grant than the caller read.
 */
export function packRecord(fields: RecordFields): { head: string; tail: string } {
  const { expiresAt } = fields
  return {
    head: `${toBase36(fields.userId)}|${fields.username}|`,
    tail: `|${toBase36(expiresAt)}|${toBase36(expiresAt - fields.lastSeenAt)}|${toBase36(expiresAt - fields.createdAt)}|${fields.ip}|${fields.userAgentRef}|${toBase36(expiresAt - fields.authenticatedAt)}`,
  }
}

/**
 * A session read from its record. The public id is a prototype getter: computed when shown
 * (listings, /user/me), not on every authentication, and no accessor is built per object.
 */
class StoredSession implements Session {
  constructor(
    readonly partition: number,
    readonly tokenHash: string,
    readonly userId: number,
    readonly username: string,
    public permissions: string[],
    readonly createdAt: number,
    public lastSeenAt: number,
    readonly expiresAt: number,
    readonly ip: string,
    readonly userAgentRef: string,
    public authenticatedAt: number,
    public userAgent = '',
  ) {}

  get publicId(): string {
    return publicIdFor(this.tokenHash)
  }
}

const base36 = (value: string, from: number, to: number) => Number.parseInt(value.slice(from, to), 36)

/**
 * Parses a stored record; undefined when missing or not in a format this version reads. A scan
 * for the separators rather than split('|'): every uncached authenticated request runs this.
 * Records written before re-authentication existed have eight parts; their password was last
 * proven at login, when they were created.
 */
export function parseSession(
  partition: number,
  tokenHash: string,
  value: string | null | undefined,
): Session | undefined {
  if (!value) return undefined
  const p1 = value.indexOf('|')
  const p2 = value.indexOf('|', p1 + 1)
  const p3 = value.indexOf('|', p2 + 1)
  const p4 = value.indexOf('|', p3 + 1)
  const p5 = value.indexOf('|', p4 + 1)
  const p6 = value.indexOf('|', p5 + 1)
  const p7 = value.indexOf('|', p6 + 1)
  // Each search starts after the previous separator, so a missing one shows as positions out of
  // order; a ninth part means another format.
  const ordered = p1 >= 0 && p1 < p2 && p2 < p3 && p3 < p4 && p4 < p5 && p5 < p6 && p6 < p7
  if (!ordered) return undefined
  const p8 = value.indexOf('|', p7 + 1)
  if (p8 !== -1 && value.indexOf('|', p8 + 1) !== -1) return undefined
  const userId = base36(value, 0, p1)
  const expiresAt = base36(value, p3 + 1, p4)
  const lastSeenAt = expiresAt - base36(value, p4 + 1, p5)
  const createdAt = expiresAt - base36(value, p5 + 1, p6)
  const authenticatedAt = p8 === -1 ? createdAt : expiresAt - base36(value, p8 + 1, value.length)
  const valid =
    Number.isSafeInteger(userId) &&
    Number.isFinite(lastSeenAt) &&
    Number.isFinite(createdAt) &&
    Number.isFinite(authenticatedAt)
  if (!valid) return undefined
  return new StoredSession(
    partition,
    tokenHash,
    userId,
    value.slice(p1 + 1, p2),
    decodePermissions(value.slice(p2 + 1, p3)),
    createdAt,
    lastSeenAt,
    expiresAt,
    value.slice(p6 + 1, p7),
    p8 === -1 ? value.slice(p7 + 1) : value.slice(p7 + 1, p8),
    authenticatedAt,
  )
}

/**
 * Both limits are enforced on read, not only by the key's TTL: the TTL is refreshed at most once
 * per touch interval, and a cached copy must never outlive what Redis would allow.
 */
export function isSessionLive(session: Session, now: number, idleTimeoutMs: number): boolean {
  return now < session.expiresAt && now - session.lastSeenAt < idleTimeoutMs
}
