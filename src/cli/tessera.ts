// `tessera <command>`: the one program, from source (`bun src/cli/tessera.ts`) or compiled
// (`bun run build` makes dist/tessera). Every command reads the same configuration (src/config.ts).

import { Command } from 'commander'
import packageJson from '../../package.json'
import { createDatabase } from '../db/client'
import { MIGRATIONS } from '../db/migrations'
import { seedPermissionCatalogue } from '../modules/users/seed'
import { adminCommand } from './admin'
import { fatal, loadConfigOrExit, migrateDatabaseOrExit, redact } from './shared'

/** `tessera migrate`: the schema step of a release, run once before its instances start. */
async function migrate(): Promise<void> {
  const config = loadConfigOrExit()
  const applied = await migrateDatabaseOrExit(config)
  const database = createDatabase(config.databaseUrl, { max: 1 })
  try {
    await seedPermissionCatalogue(database.db)
  } finally {
    await database.close()
  }
  const where = redact(config.databaseUrl)
  console.log(
    applied.length === 0
      ? `tessera: ${where} is up to date (${MIGRATIONS.length} migrations)`
      : `tessera: applied ${applied.map((m) => m.tag).join(', ')} to ${where}`,
  )
}

/**
 * `tessera healthcheck`: exits 0 when this machine's server answers 200 on /readyz, else 1, so an
 * image needs no curl for its HEALTHCHECK. It asks the PORT the configuration names, on loopback
 * when the server listens on every address.
 */
async function healthcheck(): Promise<void> {
  const config = loadConfigOrExit()
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${config.port}/readyz`
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(3_000) })
    if (response.ok) return
    fatal(`tessera: ${url} answered ${response.status}`)
  } catch (error) {
    fatal(`tessera: ${url} did not answer (${(error as Error).message})`)
  }
}

/** The command tree, built without running anything (a test reads it to check the image's commands). */
export function createProgram(): Command {
  const program = new Command('tessera')
    .description('Tessera, a session server')
    .version(packageJson.version)
    .showHelpAfterError()
  program
    .command('serve')
    .description('run the HTTP server (what `bun run start` runs)')
    // src/index.ts is the server's entry point from source; the binary runs the same module.
    .action(async () => {
      await import('../index')
    })
  program
    .command('migrate')
    .description('create the database if missing, apply pending migrations and write the permission catalogue')
    .action(migrate)
  const audit = program
    .command('audit')
    .description('run the audit consumer: record every event in audit_events (`bun run audit`)')
    .action(async () => {
      await import('./audit')
    })
  audit
    .command('tail')
    .description('print events live, one line each, reading only (`bun run audit:tail`)')
    .option('--from <id>', 'start after this stream entry id')
    .option('--all', 'start at the beginning of the stream')
    .action(async (options: { from?: string; all?: boolean }) => {
      const { tailEvents } = await import('./audit-tail')
      await tailEvents(options)
    })
  program.addCommand(adminCommand())
  program
    .command('healthcheck')
    .description("exit 0 when this machine's server is ready (GET /readyz answers 200), else 1")
    .action(healthcheck)
  return program
}

if (import.meta.main) await createProgram().parseAsync()
