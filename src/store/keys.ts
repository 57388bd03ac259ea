// The one home of every Redis key Tessera writes. Keys of one user (sessions, index, user agents,
// outbox markers, events) share their partition's hash tag (partitions.ts), so the scripts that
// change them together run in one Cluster slot; the rate limiters' counters share a tag of their
// own, since one attempt checks an account and an address together.

import { partitionOfUser, partitionTags } from './partitions'

export interface StoreKeys {
  readonly prefix: string
  /** How many partitions there are (1 with a single Redis). */
  readonly partitions: number
  /** The partition a user's keys and events live in. */
  partitionOfUser(userId: number): number
  /** String: one live session (record.ts), named by the hash of its token (never the token itself). */
  session(partition: number, tokenHash: string): string
  /**
   * Hash: a user's live sessions (one field per token hash, empty value) and permission set (`p`,
   * with its version `v`, so a late writer cannot roll it back), and `c` (USER_META_FIELDS).
   */
  userIndex(userId: number): string
  /** String: one user agent, shared by the sessions of a partition that sent it (record.ts). */
  userAgent(partition: number, ref: string): string
  /** String: marks an outbox row as applied in a partition, so a retried relay changes nothing twice. */
  outboxApplied(partition: number, outboxId: number): string
  /** Stream: the events of one partition, tailed by instances and the audit consumer. */
  events(partition: number): string
  /** SCAN pattern matching every user's index, in every partition. */
  readonly allUserIndexes: string
  /** The user id a `userIndex` key belongs to; undefined for any other key. */
  userIdOfIndex(key: string): number | undefined
  /** String: the partition count this key prefix was first used with (see checkPartitions). */
  readonly partitionsInUse: string
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

export function createStoreKeys(prefix: string, partitions = 1): StoreKeys {
  const bases = partitionTags(partitions).map((tag) => `${prefix}{${tag}}:`)
  const base = (partition: number) => {
    const found = bases[partition]
    if (found === undefined) throw new RangeError(`no partition ${partition} of ${partitions}`)
    return found
  }
  const ofUser = (userId: number) => partitionOfUser(userId, partitions)
  const limits = `${prefix}{rl}:`
  // The prefix is restricted to characters that are not glob syntax (see config.ts); braces are not
  // glob syntax either, so `{*}` matches any partition's tag.
  const indexPattern = /^\{[^}]+\}:u:(\d{1,15})$/
  return Object.freeze({
    prefix,
    partitions,
    partitionOfUser: ofUser,
    session: (partition: number, tokenHash: string) => `${base(partition)}s:${tokenHash}`,
    userIndex: (userId: number) => `${base(ofUser(userId))}u:${userId}`,
    userAgent: (partition: number, ref: string) => `${base(partition)}ua:${ref}`,
    outboxApplied: (partition: number, outboxId: number) => `${base(partition)}ob:${outboxId}`,
    events: (partition: number) => `${base(partition)}events`,
    allUserIndexes: `${prefix}{*}:u:*`,
    userIdOfIndex(key: string) {
      if (!key.startsWith(prefix)) return undefined
      const match = indexPattern.exec(key.slice(prefix.length))
      return match ? Number(match[1]) : undefined
    },
    partitionsInUse: `${prefix}{meta}:partitions`,
    loginFailuresAccount: (usernameHash: string) => `${limits}a:${usernameHash}`,
    loginFailuresAccountIp: (usernameHash: string, ipHash: string) => `${limits}ai:${usernameHash}:${ipHash}`,
    loginFailuresIp: (ipHash: string) => `${limits}i:${ipHash}`,
    limitNoticed: (counterKey: string) => `${counterKey}:n`,
    registrationsIp: (ipHash: string) => `${limits}r:${ipHash}`,
    all: `${prefix}*`,
  })
}
