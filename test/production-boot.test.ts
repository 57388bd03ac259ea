// Production boots only against a migrated database it was told about: DATABASE_URL and REDIS_URL
// are required, `serve` applies no migration unless MIGRATE_ON_BOOT=true and refuses with one line
// when the database is missing or behind, and `tessera migrate` is the step that fixes it. Real
// processes, through `bun src/cli/tessera.ts` as the binary runs it.

import { afterAll, describe, expect, test } from 'bun:test'
import postgres from 'postgres'
import { ensureDatabase } from '../src/db/migrate'
import { MIGRATIONS } from '../src/db/migrations'
import { connectRedis, createRedis } from '../src/store'
import { processEnv, type ServerProcess, spawnServer, waitFor } from './processes'
import { databaseUrlFor, deleteKeys, REDIS_URL, suffix } from './services'

const CLI = ['bun', 'src/cli/tessera.ts']
const prefix = `test:production_boot:${suffix()}:`
const databases: string[] = []
const servers: ServerProcess[] = []

afterAll(async () => {
  await Promise.allSettled(servers.map((server) => server.stop()))
  const admin = postgres(databaseUrlFor('postgres'), { max: 1, onnotice: () => {} })
  try {
    for (const name of databases) await admin.unsafe(`drop database if exists "${name}" with (force)`)
  } finally {
    await admin.end({ timeout: 5 })
  }
  const redis = createRedis(REDIS_URL)
  await connectRedis(redis)
  await deleteKeys(redis, prefix)
  await redis.quit()
})

/** A database name of this file's own, not created. */
function newDatabase(): string {
  const name = `tessera_test_production_boot_${suffix()}`
  databases.push(name)
  return databaseUrlFor(name)
}

const production = (databaseUrl: string, vars: Record<string, string> = {}) => ({
  NODE_ENV: 'production',
  DATABASE_URL: databaseUrl,
  REDIS_URL,
  REDIS_KEY_PREFIX: prefix,
  ...vars,
})

/** Runs a command of the CLI to its end: exit code and everything it printed. */
async function run(args: string[], vars: Record<string, string>) {
  const proc = Bun.spawn([...CLI, ...args], { env: processEnv(vars), stdout: 'pipe', stderr: 'pipe' })
  const [code, stdout, stderr] = await Promise.all([
    proc.exited,
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
  ])
  return { code, output: `${stdout}${stderr}`.trim() }
}

/** Starts `serve` and expects it to exit 1 with exactly one line, which it returns. */
async function refusal(vars: Record<string, string>): Promise<string> {
  const server = spawnServer(vars, { command: [...CLI, 'serve'] })
  servers.push(server)
  expect(await server.proc.exited).toBe(1)
  const lines = server.output().trim().split('\n')
  expect(lines).toHaveLength(1)
  return lines[0] ?? ''
}

describe('NODE_ENV=production', () => {
  test('without DATABASE_URL or REDIS_URL, every command refuses with one line naming the variable', async () => {
    const { DATABASE_URL: _, ...withoutDatabase } = production(newDatabase())
    expect(await refusal(withoutDatabase)).toBe(
      'tessera: invalid configuration: DATABASE_URL: is required when NODE_ENV=production',
    )
    const { REDIS_URL: __, ...withoutRedis } = production(newDatabase())
    const migrate = await run(['migrate'], withoutRedis)
    expect(migrate.code).toBe(1)
    expect(migrate.output).toStartWith('tessera: invalid configuration: REDIS_URL: is required')
  }, 20_000)

  test('serve refuses a missing database, then an empty one; `tessera migrate` makes it ready', async () => {
    const url = newDatabase()
    expect(await refusal(production(url))).toContain('does not exist; run `tessera migrate` first')

    await ensureDatabase(url)
    const behind = await refusal(production(url))
    expect(behind).toContain(`lacks ${MIGRATIONS.length} of ${MIGRATIONS.length} migrations`)
    expect(behind).toContain('run `tessera migrate` first, or set MIGRATE_ON_BOOT=true')
    // Refusing touched nothing: still no migration table.
    const sql = postgres(url, { max: 1, onnotice: () => {} })
    try {
      const [table] = await sql`select to_regclass('drizzle.__drizzle_migrations')::text as name`
      expect(table?.name).toBeNull()
    } finally {
      await sql.end({ timeout: 5 })
    }

    const migrated = await run(['migrate'], production(url))
    expect(migrated).toEqual({ code: 0, output: expect.stringContaining(`applied ${MIGRATIONS[0]?.tag}`) })
    expect((await run(['migrate'], production(url))).output).toContain('is up to date')

    const server = spawnServer(production(url), { command: [...CLI, 'serve'] })
    servers.push(server)
    await waitFor(async () => (await fetch(`${server.url}/readyz`)).status === 200, 20_000, 'a ready server')
  }, 40_000)

  test('MIGRATE_ON_BOOT=true creates and migrates a fresh database at boot, as outside production', async () => {
    const server = spawnServer(production(newDatabase(), { MIGRATE_ON_BOOT: 'true' }), {
      command: [...CLI, 'serve'],
    })
    servers.push(server)
    await waitFor(async () => (await fetch(`${server.url}/readyz`)).status === 200, 20_000, 'a ready server')
  }, 30_000)
})
