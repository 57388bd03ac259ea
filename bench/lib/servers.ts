// The bench's own database, key prefixes and server processes, and the checkout of another revision
// that --baseline runs beside the current code. Everything it makes is removed by close().

import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { loadConfig } from '../../src/config'
import { type AppContext, createContext } from '../../src/context'
import { createDatabase } from '../../src/db/client'
import { users } from '../../src/db/schema'
import { silentLogger } from '../../src/lib/logger'
import { hashPassword } from '../../src/modules/users/password'
import { connectRedis, createRedis, type RedisClient } from '../../src/store'
import {
  cookieFrom,
  http,
  loginVia,
  processEnv,
  type ServerProcess,
  spawnServer,
  startServer,
} from '../../test/processes'
import { checkoutRevision, createTestDatabase, deleteKeys, REDIS_URL, runOrThrow, suffix } from '../../test/services'
import { ROOT } from './measure'

export const USER_PASSWORD = 'bench-password-0123456789'
const PEERS_DIR = join(ROOT, 'bench', 'peers')

/** A revision whose servers the bench runs: the current checkout, or the --baseline worktree. */
export interface Side {
  readonly label: string
  readonly root: string
  /** Each side keys its sessions apart: two revisions may not read each other's records. */
  readonly prefix: string
}

export interface Server extends ServerProcess {
  readonly name: string
  /** Logs in through the front door and returns the Cookie header value. */
  login(username: string): Promise<string>
}

export async function createBenchEnv() {
  const id = suffix()
  const prefix = `bench:${id}:`
  // As long as the default `tessera:`, so that the memory measurement's key names are too.
  const shortPrefix = `b${id.slice(-6)}:`
  const db = await createTestDatabase('bench')
  const database = createDatabase(db.url, { max: 4 })
  const redis = createRedis(REDIS_URL, { commandTimeout: 60_000 })
  await connectRedis(redis)
  const running = new Set<Server>()
  const worktrees: (() => void)[] = []
  const closers: (() => Promise<unknown>)[] = []
  const current: Side = { label: 'current', root: ROOT, prefix }

  const serverEnv = (side: Side, name: string, overrides: Record<string, string>) => ({
    NODE_ENV: 'production',
    LOG_LEVEL: 'silent',
    DATABASE_URL: db.url,
    REDIS_URL,
    REDIS_KEY_PREFIX: side.prefix,
    INSTANCE_ID: `bench-${id}-${name}`,
    ...overrides,
  })
  const track = (name: string, server: ServerProcess, login: Server['login']): Server => {
    const tracked = { ...server, name, login }
    running.add(tracked)
    return tracked
  }
  const stopServers = async () => {
    await Promise.allSettled([...running].map((server) => server.stop()))
    running.clear()
  }

  return {
    id,
    prefix,
    shortPrefix,
    redis,
    current,

    /** A context built exactly as a current server with these settings builds it (on `client`, if given). */
    contextFor(overrides: Record<string, string>, client: RedisClient = redis): AppContext {
      const config = loadConfig(processEnv(serverEnv(current, 'bench', overrides)))
      return createContext({ config, db: database.db, redis: client, logger: silentLogger })
    },

    /** Something else to undo when the run ends (after the servers stop), such as a test cluster. */
    onClose(close: () => Promise<unknown>): void {
      closers.push(close)
    },

    /** Inserts `count` users sharing one password (one argon2 hash, made at the real parameters). */
    async seedUsers(count: number) {
      const passwordHash = await hashPassword(USER_PASSWORD)
      const names = Array.from({ length: count }, (_, i) => `bench_user_${String(i).padStart(4, '0')}`)
      return database.db
        .insert(users)
        .values(names.map((username) => ({ username, passwordHash })))
        .returning({ id: users.id, username: users.username })
    },

    /**
     * Checks `rev` out into a temporary worktree with its own dependencies. Its servers share the
     * database, migrated by the current code: the baseline is expected to be an older revision.
     */
    checkoutBaseline(rev: string): Side {
      const { label, root, remove } = checkoutRevision(rev, 'baseline')
      worktrees.push(remove)
      return { label, root, prefix: `${prefix}baseline:` }
    },

    /** A Tessera server of `side` (`bun src/index.ts`), configured only through the environment. */
    async startTessera(name: string, overrides: Record<string, string> = {}, side = current): Promise<Server> {
      const server = await startServer(serverEnv(side, name, overrides), { root: side.root })
      return track(name, server, (username) => loginVia(server.url, username, USER_PASSWORD))
    },

    /**
     * Milliseconds from spawning a current server (`bun src/index.ts`, or `command`) to its first 200
     * on /readyz, polled every few milliseconds; the server is stopped before this returns.
     */
    async timeBoot(name: string, command?: string[]): Promise<number> {
      const started = performance.now()
      const server = spawnServer(serverEnv(current, name, {}), command ? { command } : {})
      try {
        for (;;) {
          const ready = await fetch(`${server.url}/readyz`).then(
            (r) => r.status === 200,
            () => false,
          )
          if (ready) return performance.now() - started
          if (server.proc.exitCode !== null) throw new Error(`${name} exited at boot: ${server.output()}`)
          if (performance.now() - started > 30_000) throw new Error(`${name} not ready after 30 s: ${server.output()}`)
          await Bun.sleep(5)
        }
      } finally {
        await server.stop()
      }
    },

    /** A peer session server on Node (bench/peers/<file>), keyed under its own sub-prefix. */
    async startPeer(name: string, file: string): Promise<Server> {
      if (!existsSync(join(PEERS_DIR, 'node_modules', '.package-lock.json'))) {
        console.error('bench: installing the peers’ pinned dependencies (npm ci in bench/peers)')
        runOrThrow(['npm', 'ci', '--no-audit', '--no-fund', '--loglevel=error'], PEERS_DIR)
      }
      const vars = { NODE_ENV: 'production', REDIS_URL, KEY_PREFIX: `${prefix}${name}:` }
      const command = [process.env.BENCH_NODE ?? 'node', file]
      const server = await startServer(vars, { root: PEERS_DIR, command })
      return track(name, server, async (username) => {
        const response = await http(server.url, 'POST', '/login', { body: { username } })
        if (response.status !== 200) throw new Error(`login to ${name} answered ${response.status}`)
        return cookieFrom(response)
      })
    },

    stopServers,

    /** Stops every server, then removes the keys, the database and any baseline worktree. */
    async close(): Promise<void> {
      await stopServers()
      for (const close of closers) await close().catch((error) => console.error(`bench: ${error}`))
      for (const root of [prefix, shortPrefix]) await deleteKeys(redis, root).catch(() => {})
      await redis.quit().catch(() => {})
      await database.close().catch(() => {})
      await db.drop().catch((error) => console.error(`bench: could not drop the database: ${error}`))
      for (const remove of worktrees) {
        try {
          remove()
        } catch (error) {
          console.error(`bench: ${error}`)
        }
      }
    },

    /** Last resort from a synchronous `exit` handler, where nothing can be awaited. */
    killNow(): void {
      for (const server of running) server.proc.kill('SIGKILL')
    },
  }
}

export type BenchEnv = Awaited<ReturnType<typeof createBenchEnv>>
