// Every auth event as a typed union, and its encoding to and from flat Redis Stream fields.
//
// Events name sessions only by the SHA-256 of their token (the same hash that names the Redis key),
// never by the token. Passwords never appear; a failed login carries only the attempted username.
// Every text value is client input as far as the stream is concerned: encodeEvent makes it safe
// for every reader (PostgreSQL jsonb refuses NUL, terminals obey control characters).

export const EVENT_TYPES = [
  'user_created',
  'login_succeeded',
  'login_failed',
  'logout',
  'session_revoked',
  'user_sessions_revoked',
  'all_sessions_revoked',
  'permission_granted',
  'permission_revoked',
  'user_disabled',
  'user_enabled',
  'user_deleted',
  'password_changed',
  'access_denied',
  'session_reauthenticated',
] as const

export type EventType = (typeof EVENT_TYPES)[number]

/** Fields every event carries. Ids are PostgreSQL user ids; 0 means "nobody" (e.g. a failed login). */
interface EventBase {
  /** Milliseconds since the epoch. */
  at: number
  /** The instance that wrote the event. */
  instance: string
  /** Who did it (0 when anonymous, e.g. a login attempt). */
  actorId: number
  /** Whose account or sessions it concerns (0 when unknown, e.g. a login for a missing user). */
  subjectId: number
  /** Key hash(es) of the sessions concerned (a 132-bit SHA-256 prefix, never the token); comma-separated. */
  sessionHash?: string
  ip?: string
  userAgent?: string
  /** Who acted when it was no user: the operator of the admin CLI, `cli:<os user>` (actorId 0). */
  operator?: string
}

export type AuthEvent = EventBase &
  (
    | { type: 'user_created'; username: string }
    | { type: 'login_succeeded'; username: string }
    | { type: 'login_failed'; username: string; reason: 'bad_credentials' | 'disabled' | 'rate_limited' }
    | { type: 'logout' }
    | { type: 'session_revoked'; reason: string }
    | { type: 'user_sessions_revoked'; reason: string }
    | { type: 'all_sessions_revoked'; reason: string }
    | { type: 'permission_granted'; permission: string; permissions: string[] }
    | { type: 'permission_revoked'; permission: string; permissions: string[] }
    | { type: 'user_disabled' }
    | { type: 'user_enabled' }
    | { type: 'user_deleted' }
    | { type: 'password_changed' }
    | { type: 'access_denied'; permission: string; path: string }
    | { type: 'session_reauthenticated' }
  )

// Short stream field names keep entries small; this table is the only place they are spelled out.
const FIELD = {
  type: 't',
  at: 'at',
  instance: 'in',
  actorId: 'ac',
  subjectId: 'su',
  sessionHash: 'sh',
  ip: 'ip',
  userAgent: 'ua',
  username: 'un',
  reason: 'rs',
  permission: 'pm',
  permissions: 'ps',
  path: 'pa',
  operator: 'op',
} as const

export const SESSION_HASH_FIELD = FIELD.sessionHash
export const ACTOR_FIELD = FIELD.actorId
export const SUBJECT_FIELD = FIELD.subjectId

/** Longest text a field that comes from the client keeps; longer values are cut and marked with an ellipsis. */
export const EVENT_TEXT_MAX = 256
// Fields whose value a client chose; the others (hashes, ids, permission names) are Tessera's own
// and must stay whole: a session hash list is as long as the user's sessions are many.
const CLIENT_FIELDS: ReadonlySet<string> = new Set(['username', 'userAgent', 'ip', 'path'])

// C0 and C1 control characters and DEL: NUL is refused by PostgreSQL text and jsonb, the others
// rewrite terminals that print the audit trail.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g

/**
 * A text value as every reader of the stream can take it: well-formed UTF-16 (a lone surrogate
 * becomes U+FFFD), control characters replaced by U+FFFD, at most EVENT_TEXT_MAX characters.
 */
export function eventText(value: string, max = EVENT_TEXT_MAX): string {
  const clean = value.toWellFormed().replace(CONTROL, '\ufffd')
  return clean.length <= max ? clean : `${clean.slice(0, max - 1).toWellFormed()}…`
}

/** Encodes an event as alternating field/value strings for XADD. */
export function encodeEvent(event: AuthEvent): string[] {
  const out: string[] = []
  for (const [key, field] of Object.entries(FIELD) as [keyof typeof FIELD, string][]) {
    const value = (event as unknown as Record<string, unknown>)[key]
    if (value === undefined || value === '') continue
    const text = Array.isArray(value) ? value.join(',') : String(value)
    out.push(field, eventText(text, CLIENT_FIELDS.has(key) ? EVENT_TEXT_MAX : Number.POSITIVE_INFINITY))
  }
  return out
}

/** The text fields an event may carry, decoded as they are. */
const OPTIONAL_TEXT_FIELDS = [
  'sessionHash',
  'ip',
  'userAgent',
  'username',
  'reason',
  'permission',
  'path',
  'operator',
] as const

/** Decodes XREAD/XRANGE fields back into an event; returns undefined for anything malformed. */
export function decodeEvent(fields: readonly string[]): AuthEvent | undefined {
  const raw = new Map<string, string>()
  for (let i = 0; i + 1 < fields.length; i += 2) raw.set(fields[i] as string, fields[i + 1] as string)
  const type = raw.get(FIELD.type)
  if (!type || !(EVENT_TYPES as readonly string[]).includes(type)) return undefined
  const at = Number(raw.get(FIELD.at))
  if (!Number.isFinite(at)) return undefined
  const event: Record<string, unknown> = {
    type,
    at,
    instance: raw.get(FIELD.instance) ?? '',
    actorId: Number(raw.get(FIELD.actorId) ?? 0),
    subjectId: Number(raw.get(FIELD.subjectId) ?? 0),
  }
  for (const key of OPTIONAL_TEXT_FIELDS) {
    const value = raw.get(FIELD[key])
    if (value !== undefined) event[key] = value
  }
  const permissions = raw.get(FIELD.permissions)
  if (type === 'permission_granted' || type === 'permission_revoked') {
    event.permissions = permissions ? permissions.split(',') : []
  }
  return event as unknown as AuthEvent
}

/** The session hashes an event names (empty when it names none). */
export function eventSessionHashes(event: AuthEvent): string[] {
  return event.sessionHash ? event.sessionHash.split(',') : []
}
