// The one home of every Redis key Tessera writes.
//
// Every key carries the same hash tag, `{auth}`, so in Redis Cluster they all map to one slot. That is
// deliberate: a session, its user's index and the event announcing the change are written in one
// MULTI or Lua script, and Cluster only runs those within a single slot. A session is a few hundred
// bytes, so one slot (one primary) holds millions of them; scale reads with replicas.

export interface RedisKeys {
  readonly prefix: string
  /** Prefix of every session key; Lua scripts append a token hash to it. */
  readonly sessionPrefix: string
  /** String: one live session (record.ts), named by the hash of its token (never the token itself). */
  session(tokenHash: string): string
  /**
   * Hash: a user's live sessions (one field per token hash, empty value) and permission set (`p`, with its
   * version `v`, so a late writer cannot roll it back), and `c` (USER_META_FIELDS in store.ts).
   */
  userSessions(userId: number): string
  /** Prefix of every `userSessions` key; a Lua script appends a user id to it. */
  readonly userSessionsPrefix: string
  /** String: one user agent, shared by every session that sent it (record.ts). */
  userAgent(ref: string): string
  /** SCAN pattern matching every user's session index (ending everyone's sessions). */
  readonly allUserSessions: string
  /** The user id a `userSessions` key belongs to; undefined for any other key. */
  userIdOfSessions(key: string): number | undefined
  /** String: marks an outbox row as applied, so a retried relay changes nothing twice. */
  outboxApplied(outboxId: number): string
  /** Stream: every auth event, tailed by instances and the audit consumer. */
  readonly events: string
  /** Counter: failed logins for one account (username hashed), across all clients. */
  loginFailuresAccount(usernameHash: string): string
  /** Counter: failed logins for one account from one client address (both hashed). */
  loginFailuresAccountIp(usernameHash: string, ipHash: string): string
  /** Counter: failed logins from one client address (hashed), across all accounts. */
  loginFailuresIp(ipHash: string): string
  /** Marker beside a limit counter: its first refusal of the window was announced. */
  limitNoticed(counterKey: string): string
  /** Counter: registrations from one client address (hashed). */
  registrationsIp(ipHash: string): string
  /** SCAN pattern matching every key of this prefix. */
  readonly all: string
}

export function createRedisKeys(prefix: string): RedisKeys {
  const base = `${prefix}{auth}:`
  const sessionPrefix = `${base}s:`
  const userSessionsPrefix = `${base}u:`
  return Object.freeze({
    prefix,
    sessionPrefix,
    session: (tokenHash: string) => `${sessionPrefix}${tokenHash}`,
    userSessionsPrefix,
    userSessions: (userId: number) => `${userSessionsPrefix}${userId}`,
    userAgent: (ref: string) => `${base}ua:${ref}`,
    // The prefix is restricted to characters that are not glob syntax (see config.ts).
    allUserSessions: `${userSessionsPrefix}*`,
    userIdOfSessions(key: string) {
      if (!key.startsWith(userSessionsPrefix)) return undefined
      const id = key.slice(userSessionsPrefix.length)
      return /^\d{1,15}$/.test(id) ? Number(id) : undefined
    },
    outboxApplied: (outboxId: number) => `${base}ob:${outboxId}`,
    events: `${base}events`,
    loginFailuresAccount: (usernameHash: string) => `${base}rl:a:${usernameHash}`,
    loginFailuresAccountIp: (usernameHash: string, ipHash: string) => `${base}rl:ai:${usernameHash}:${ipHash}`,
    loginFailuresIp: (ipHash: string) => `${base}rl:i:${ipHash}`,
    limitNoticed: (counterKey: string) => `${counterKey}:n`,
    registrationsIp: (ipHash: string) => `${base}rl:r:${ipHash}`,
    all: `${prefix}*`,
  })
}
