// The real Redis and PostgreSQL that tests and the benchmark run against, and how each caller owns
// a piece of them (a database and a key prefix of its own). No bun:test here: bench/ imports it.

import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type Redis from 'ioredis'
import { createDatabase } from '../src/db/client'
import { ensureDatabase, migrateDatabase } from '../src/db/migrate'

export const PG_BASE = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0'
export const ADMIN_PASSWORD = 'admin-password-for-tests'

export const suffix = () => `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`

export function databaseUrlFor(name: string): string {
  const url = new URL(PG_BASE)
  url.pathname = `/${name}`
  return url.toString()
}

/** A fresh, migrated database named after its owner (a test file or the bench); dropped by the returned function. */
export async function createTestDatabase(label: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `tessera_test_${label.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${suffix()}`
  const url = databaseUrlFor(name)
  await ensureDatabase(url)
  await migrateDatabase(url)
  return {
    url,
    async drop() {
      const admin = createDatabase(databaseUrlFor('postgres'), { max: 1 })
      try {
        await admin.sql.unsafe(`drop database if exists "${name}" with (force)`)
      } finally {
        await admin.close()
      }
    },
  }
}

/** Deletes every key under a prefix (SCAN, never KEYS). */
export async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    cursor = next
    if (keys.length > 0) await redis.del(...keys)
  } while (cursor !== '0')
}

/** A loopback TCP port nobody listens on right now: the OS picks it and we close it at once. */
export function freePort(): number {
  const listener = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
  const { port } = listener
  listener.stop(true)
  return port
}

const ROOT = new URL('..', import.meta.url).pathname

/** Runs a setup command to completion, or throws with its output. */
export function runOrThrow(command: string[], cwd: string): string {
  const out = Bun.spawnSync(command, { cwd, stdout: 'pipe', stderr: 'pipe' })
  if (out.exitCode !== 0) throw new Error(`${command.join(' ')} failed in ${cwd}:\n${out.stdout}${out.stderr}`)
  return out.stdout.toString().trim()
}

/**
 * Another revision of this repository, checked out into a temporary git worktree with its own
 * dependencies: for running an older server beside the current one (upgrade tests, the bench's
 * --baseline). `remove` deletes the worktree.
 */
export function checkoutRevision(rev: string, name: string): { label: string; root: string; remove(): void } {
  const label = runOrThrow(['git', 'rev-parse', '--short', `${rev}^{commit}`], ROOT)
  const root = join(tmpdir(), `tessera-${name}-${suffix()}`)
  runOrThrow(['git', 'worktree', 'add', '--detach', root, label], ROOT)
  try {
    runOrThrow(['bun', 'install', '--frozen-lockfile', '--silent'], root)
  } catch (error) {
    runOrThrow(['git', 'worktree', 'remove', '--force', root], ROOT)
    throw error
  }
  return { label, root, remove: () => void runOrThrow(['git', 'worktree', 'remove', '--force', root], ROOT) }
}
