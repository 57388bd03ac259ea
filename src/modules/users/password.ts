// Password hashing with argon2id at (at least) the OWASP-recommended cost, and rules for new passwords.

import { hash, verify } from '@node-rs/argon2'

// @node-rs/argon2's `Algorithm` is an ambient const enum, which isolated modules cannot import.
const ARGON2ID = 2

/** OWASP Password Storage Cheat Sheet: argon2id, 19 MiB, t=2, p=1. */
export const ARGON2_PARAMS = { algorithm: ARGON2ID, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const

export function hashPassword(password: string): Promise<string> {
  return hash(password, ARGON2_PARAMS)
}

export async function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  try {
    return await verify(passwordHash, password)
  } catch {
    // A malformed stored hash is a failed login, not a 500 that would tell the caller it is special.
    return false
  }
}

/** True when a stored hash was made with other (older, weaker) parameters and should be redone. */
export function needsRehash(passwordHash: string): boolean {
  const match = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$/.exec(passwordHash)
  if (!match) return true
  const [, m, t, p] = match.map(Number)
  return m !== ARGON2_PARAMS.memoryCost || t !== ARGON2_PARAMS.timeCost || p !== ARGON2_PARAMS.parallelism
}

let dummyHash: Promise<string> | undefined
/**
 * A hash to verify against when the username does not exist, so that an unknown user costs the
 * same argon2 work as a wrong password and the two cannot be told apart by timing.
 */
export function getDummyHash(): Promise<string> {
  dummyHash ??= hashPassword(crypto.randomUUID())
  return dummyHash
}
