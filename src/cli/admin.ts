// `tessera admin ...` (`bun run admin -- ...`): accounts, permissions and sessions from a shell,
// through the same services as the HTTP routes, so every change is committed with its outbox row,
// relayed to Redis and announced by the same event, naming the operator (`cli:<os user>`) as actor.

import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Command } from 'commander'
import { type AppContext, createContext } from '../context'
import { createDatabase } from '../db/client'
import { AppError, withPostgres } from '../lib/errors'
import { normalizeUsername, PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, USERNAME_RULE } from '../lib/limits'
import { createLogger, type Logger } from '../lib/logger'
import { deleteUser, listUsers, setUserDisabled, type UserView } from '../modules/admin/service'
import { type Actor, operatorActor } from '../modules/auth/client'
import { resetPassword } from '../modules/password/service'
import {
  endEverySession,
  endSession,
  endUserSessions,
  listSessions,
  type SessionView,
} from '../modules/sessions/service'
import { findUserByUsername } from '../modules/users/repository'
import { seedPermissionCatalogue } from '../modules/users/seed'
import { changePermission, createUser } from '../modules/users/service'
import { connectRedisOrExit, loadConfigOrExit, prepareDatabaseOrExit } from './shared'
import { renderTable } from './table'

/** A refusal worded for the command line (a bad argument, an unknown name). */
class AdminError extends Error {}

interface Admin {
  ctx: AppContext
  actor: Actor
}

/**
 * The operator's name as events record it: the passwd entry of the process's user, as Node's
 * os.userInfo() reads it. Bun's returns $USER instead, which any caller can set, or "unknown"
 * without it (oven-sh/bun#39859). A user without an entry (some containers) is named by uid.
 */
function osUser(): string {
  const uid = process.getuid?.()
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const [name, , id] = line.split(':')
      if (name && id !== undefined && Number(id) === uid) return name
    }
  } catch {
    // No passwd file: named by uid below.
  }
  return `uid-${uid ?? 'unknown'}`
}

/**
 * Connects like the server (same configuration, same database checks), runs one command as the
 * operator and closes everything. Refusals (a service's AppError, a bad argument) are one line on
 * stderr and exit code 1; anything else is a bug and keeps its stack.
 */
async function runAdmin(work: (admin: Admin) => Promise<void>): Promise<void> {
  const config = loadConfigOrExit()
  await prepareDatabaseOrExit(config)
  const redis = await connectRedisOrExit(config)
  const database = createDatabase(config.databaseUrl, { max: 2 })
  // A command's answer is its output: only warnings and errors are logged, to stderr.
  const level = config.logLevel === 'debug' || config.logLevel === 'info' ? 'warn' : config.logLevel
  const logger: Logger = createLogger(level, (line) => console.error(line))
  const ctx = createContext({ config, db: database.db, redis, logger })
  try {
    // As every server boot does: grants refer to the catalogue, and no server may have run yet.
    await withPostgres(() => seedPermissionCatalogue(database.db))
    await work({ ctx, actor: operatorActor(osUser()) })
  } catch (error) {
    if (!(error instanceof AppError || error instanceof AdminError)) throw error
    console.error(`tessera admin: ${error.message}`)
    process.exitCode = 1
  } finally {
    await Promise.allSettled([database.close(), redis.quit()])
  }
}

async function userNamed(ctx: AppContext, name: string): Promise<{ id: number; username: string }> {
  const username = normalizeUsername(name)
  const user = username === undefined ? undefined : await withPostgres(() => findUserByUsername(ctx.db, username))
  if (!user) throw new AdminError(`no user named "${name}"`)
  return user
}

/** The new password: the first line of stdin with --password-stdin, else a random one, printed once. */
async function newPassword(fromStdin: boolean): Promise<{ password: string; generated: boolean }> {
  if (!fromStdin) return { password: randomBytes(18).toString('base64url'), generated: true }
  const password = (await Bun.stdin.text()).split(/\r?\n/, 1)[0] ?? ''
  if (password.length < PASSWORD_MIN_LENGTH || password.length > PASSWORD_MAX_LENGTH) {
    throw new AdminError(`the password must be ${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters`)
  }
  return { password, generated: false }
}

/** What to add when Redis did not take a change at once: the outbox relay of any running server will. */
function notPropagated(propagated: boolean): void {
  if (!propagated) {
    console.error(
      'tessera admin: recorded in PostgreSQL, but Redis did not take it yet; the outbox relay of any running server applies it within seconds',
    )
  }
}

const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`
const json = (value: unknown) => console.log(JSON.stringify(value, null, 2))
const shortDate = (iso: string) => iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z')

function printUsers(users: UserView[]): void {
  const rows = users.map((u) => [
    String(u.id),
    u.username,
    u.disabled ? 'disabled' : 'active',
    u.permissions.join(',') || '-',
    shortDate(u.createdAt),
  ])
  console.log(renderTable(['ID', 'USERNAME', 'STATE', 'PERMISSIONS', 'CREATED'], rows))
}

type OwnedSession = SessionView & { userId: number; username: string }

function printSessions(sessions: OwnedSession[]): void {
  const rows = sessions.map((s) => [
    s.id,
    s.username,
    shortDate(s.createdAt),
    shortDate(s.lastSeenAt),
    shortDate(s.expiresAt),
    s.ip || '-',
    s.userAgent.slice(0, 40) || '-',
  ])
  console.log(renderTable(['SESSION', 'USER', 'CREATED', 'LAST SEEN', 'EXPIRES', 'IP', 'USER AGENT'], rows))
}

/** Every account, page by page (listUsers is keyset-paginated). */
async function allUsers(ctx: AppContext, query: { q?: string; disabled?: boolean } = {}): Promise<UserView[]> {
  const found: UserView[] = []
  let after: number | undefined
  for (;;) {
    const page = await listUsers(ctx, { ...query, after, limit: 500 })
    found.push(...page.users)
    if (page.nextAfter === null) return found
    after = page.nextAfter
  }
}

async function sessionsOf(ctx: AppContext, user: { id: number; username: string }): Promise<OwnedSession[]> {
  const sessions = await listSessions(ctx, user.id, undefined)
  return sessions.map((session) => ({ ...session, userId: user.id, username: user.username }))
}

function usersCommand(): Command {
  const users = new Command('users').description('list, create, disable, enable and delete accounts; reset passwords')
  users
    .command('list')
    .description('list accounts with their state and permissions')
    .option('--search <text>', 'only usernames containing this text')
    .option('--disabled', 'only disabled accounts')
    .option('--json', 'print JSON instead of a table')
    .action((options: { search?: string; disabled?: boolean; json?: boolean }) =>
      runAdmin(async ({ ctx }) => {
        const found = await allUsers(ctx, { q: options.search, disabled: options.disabled ? true : undefined })
        if (options.json) json({ users: found })
        else printUsers(found)
      }),
    )
  users
    .command('create <username>')
    .description('create an account with no permissions (user_created)')
    .option('--password-stdin', 'read the password from the first line of stdin instead of generating one')
    .action((name: string, options: { passwordStdin?: boolean }) =>
      runAdmin(async ({ ctx, actor }) => {
        if (normalizeUsername(name) === undefined) throw new AdminError(`the username must be ${USERNAME_RULE}`)
        const { password, generated } = await newPassword(options.passwordStdin === true)
        const user = await createUser(ctx, { username: name, password }, actor)
        console.log(`created ${user.username} (id ${user.id})`)
        if (generated) console.log(`password: ${password}`)
      }),
    )
  users
    .command('reset-password <username>')
    .description('set a new password and end every session of the account (password_changed)')
    .option('--password-stdin', 'read the password from the first line of stdin instead of generating one')
    .action((name: string, options: { passwordStdin?: boolean }) =>
      runAdmin(async ({ ctx, actor }) => {
        const user = await userNamed(ctx, name)
        const { password, generated } = await newPassword(options.passwordStdin === true)
        const { propagated } = await resetPassword(ctx, { userId: user.id, newPassword: password, actor })
        console.log(`reset the password of ${user.username} (id ${user.id}); every session of theirs ended`)
        if (generated) console.log(`password: ${password}`)
        notPropagated(propagated)
      }),
    )
  for (const disabled of [true, false]) {
    const verb = disabled ? 'disable' : 'enable'
    users
      .command(`${verb} <username>`)
      .description(
        disabled ? 'disable an account and end its sessions (user_disabled)' : 'enable an account (user_enabled)',
      )
      .action((name: string) =>
        runAdmin(async ({ ctx, actor }) => {
          const user = await userNamed(ctx, name)
          const result = await setUserDisabled(ctx, { userId: user.id, disabled, actor })
          console.log(
            result.changed ? `${verb}d ${user.username} (id ${user.id})` : `${user.username} was already ${verb}d`,
          )
          notPropagated(result.propagated)
        }),
      )
  }
  users
    .command('delete <username>')
    .description('delete an account, its grants and its sessions (user_deleted)')
    .action((name: string) =>
      runAdmin(async ({ ctx, actor }) => {
        const user = await userNamed(ctx, name)
        const result = await deleteUser(ctx, { userId: user.id, actor })
        console.log(`deleted ${user.username} (id ${user.id})`)
        notPropagated(result.propagated)
      }),
    )
  return users
}

function permissionsCommand(): Command {
  const permissions = new Command('permissions').description('grant and revoke permissions')
  for (const mode of ['grant', 'revoke'] as const) {
    permissions
      .command(`${mode} <username> <permission>`)
      .description(
        `${mode} a permission; live sessions change at once (permission_${mode === 'grant' ? 'granted' : 'revoked'})`,
      )
      .action((name: string, permission: string) =>
        runAdmin(async ({ ctx, actor }) => {
          const result = await changePermission(ctx, { username: name, permission, actor }, mode)
          const held = result.permissions?.join(',') || 'none'
          console.log(
            result.changed
              ? `${mode === 'grant' ? 'granted' : 'revoked'} ${permission} ${mode === 'grant' ? 'to' : 'from'} ${result.username} (id ${result.userId}); permissions now: ${held}`
              : `nothing to do: ${result.username} ${mode === 'grant' ? 'already holds' : 'does not hold'} ${permission}`,
          )
          notPropagated(result.propagated)
        }),
      )
  }
  return permissions
}

function sessionsCommand(): Command {
  const sessions = new Command('sessions').description("list and end one user's sessions, or everyone's")
  sessions
    .command('list [username]')
    .description("list a user's live sessions, newest first, or with --all every user's")
    .option('--all', "every user's sessions (one Redis read per account)")
    .option('--json', 'print JSON instead of a table')
    .action((name: string | undefined, options: { all?: boolean; json?: boolean }) =>
      runAdmin(async ({ ctx }) => {
        if ((name === undefined) === (options.all !== true)) throw new AdminError('name a user, or pass --all')
        const owners = name === undefined ? await allUsers(ctx) : [await userNamed(ctx, name)]
        const found: OwnedSession[] = []
        for (const owner of owners) found.push(...(await sessionsOf(ctx, owner)))
        if (options.json) json({ sessions: found })
        else printSessions(found)
      }),
    )
  sessions
    .command('end [username] [session-id]')
    .description("end one of a user's sessions, all of them, or with --all every session of every user")
    .option('--all', 'every session of every user (all_sessions_revoked)')
    .action((name: string | undefined, sessionId: string | undefined, options: { all?: boolean }) =>
      runAdmin(async ({ ctx, actor }) => {
        if ((name === undefined) === (options.all !== true)) throw new AdminError('name a user, or pass --all')
        if (name === undefined) {
          const ended = await endEverySession(ctx, { actor, reason: 'ended_everywhere_by_admin' })
          console.log(`ended ${count(ended.sessions, 'session')} of ${count(ended.users, 'user')}`)
          return
        }
        const user = await userNamed(ctx, name)
        if (sessionId !== undefined) {
          await endSession(ctx, { userId: user.id, publicId: sessionId, actor, reason: 'ended_by_admin' })
          console.log(`ended session ${sessionId} of ${user.username}`)
          return
        }
        const ended = await endUserSessions(ctx, { userId: user.id, actor, reason: 'ended_by_admin' })
        console.log(`ended ${count(ended, 'session')} of ${user.username}`)
      }),
    )
  return sessions
}

/** The `admin` command and its subcommands. */
export function adminCommand(): Command {
  return new Command('admin')
    .description('administer accounts, permissions and sessions as the operator (cli:<os user>)')
    .addCommand(usersCommand())
    .addCommand(permissionsCommand())
    .addCommand(sessionsCommand())
}
