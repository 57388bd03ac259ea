// `bun run admin -- ...`, every command as a real process against this file's database and prefix:
// what it prints, what it changes (seen through the app's own routes at once), and its event in
// audit_events with the operator (`cli:<os user>`) as actor, recorded by the audit consumer.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { ADMIN_PASSWORD, call, createTestEnv, loginAs, REDIS_URL, startAuditConsumer, type TestEnv } from './helpers'
import { processEnv, runToEnd, waitFor } from './processes'

const ROOT = new URL('..', import.meta.url).pathname
/** The operator as events must name it: the passwd name of the user running the tests. */
const OPERATOR = `cli:${Bun.spawnSync(['id', '-un']).stdout.toString().trim()}`

let env: TestEnv
let consumer: { stop(): Promise<void> }

beforeAll(async () => {
  env = await createTestEnv('admin_cli')
  consumer = startAuditConsumer(env)
})

afterAll(async () => {
  await consumer?.stop()
  await env.close()
})

/** Runs `bun run admin -- <args>` to its end, with this file's database and prefix. */
function admin(args: string[], stdin?: string) {
  const vars = processEnv({ DATABASE_URL: env.databaseUrl, REDIS_URL, REDIS_KEY_PREFIX: env.prefix })
  return runToEnd(['bun', 'run', '--silent', 'admin', ...args], { cwd: ROOT, env: vars, stdin })
}

/** Runs a command that must succeed; returns what it printed. */
async function ok(args: string[], stdin?: string): Promise<string> {
  const result = await admin(args, stdin)
  expect({ args, code: result.code, stderr: result.stderr }).toEqual({ args, code: 0, stderr: '' })
  return result.stdout
}

/** Runs a command that must be refused with one line on stderr; returns it. */
async function refused(args: string[]): Promise<string> {
  const result = await admin(args)
  expect({ args, code: result.code, stdout: result.stdout }).toEqual({ args, code: 1, stdout: '' })
  expect(result.stderr.split('\n')).toHaveLength(1)
  return result.stderr
}

const userId = async (username: string) =>
  (await env.database.sql<{ id: number }[]>`select id from users where username = ${username}`)[0]?.id ?? 0

const me = (cookie: string) => call(env.app, 'GET', '/user/me', { cookie })

type Row = { type: string; actorId: number | null; subjectId: number | null; data: Record<string, unknown> }

/** The operator's events recorded so far, oldest first. */
const operatorRows = () =>
  env.database.sql<Row[]>`
    select type, actor_id as "actorId", subject_id as "subjectId", data from audit_events
    where data->>'operator' = ${OPERATOR} order by at, id`

/**
 * Waits until the consumer has recorded `type` for `subjectId` as the operator's, with the `data`
 * fields given; returns the row.
 */
async function recorded(type: string, subjectId: number | null, data: Record<string, unknown> = {}): Promise<Row> {
  const matches = (r: Row) =>
    r.type === type && r.subjectId === subjectId && Object.entries(data).every(([key, value]) => r.data[key] === value)
  let row: Row | undefined
  await waitFor(
    async () => {
      row = (await operatorRows()).find(matches)
      return row !== undefined
    },
    10_000,
    `${type} for ${subjectId} in audit_events`,
  )
  const found = row as Row
  // The operator is nobody's account: actor 0 (recorded as null), named in the event instead.
  expect(found.actorId).toBeNull()
  expect(found.data).toMatchObject({ operator: OPERATOR, userAgent: 'tessera-cli' })
  return found
}

describe('tessera admin users', () => {
  test('create with a generated password, printed once; the account logs in with it', async () => {
    const out = await ok(['users', 'create', 'carol'])
    const id = await userId('carol')
    expect(out.split('\n')[0]).toBe(`created carol (id ${id})`)
    const password = /^password: (\S+)$/m.exec(out)?.[1] ?? ''
    expect(password.length).toBeGreaterThanOrEqual(20)
    await loginAs(env, 'carol', password)
    await recorded('user_created', id, { username: 'carol' })
  }, 20_000)

  test('create --password-stdin reads the first line; bad names and short passwords are refused', async () => {
    expect(await ok(['users', 'create', 'dave', '--password-stdin'], 'dave-password-1\nignored\n')).toStartWith(
      'created dave',
    )
    await loginAs(env, 'dave', 'dave-password-1')
    await recorded('user_created', await userId('dave'))
    expect(await refused(['users', 'create', 'x'])).toStartWith('tessera admin: the username must be 3-32')
    const short = await admin(['users', 'create', 'erin', '--password-stdin'], 'short\n')
    expect(short).toMatchObject({ code: 1, stderr: 'tessera admin: the password must be 8 to 256 characters' })
    const taken = await admin(['users', 'create', 'DAVE', '--password-stdin'], 'another-password\n')
    expect(taken).toMatchObject({ code: 1, stderr: 'tessera admin: That username is already taken.' })
  }, 30_000)

  test('disable ends the sessions at once; enable lets the account in again', async () => {
    const id = await userId('dave')
    const cookie = await loginAs(env, 'dave', 'dave-password-1')
    expect(await ok(['users', 'disable', 'dave'])).toBe(`disabled dave (id ${id})`)
    expect((await me(cookie)).status).toBe(401)
    expect(await ok(['users', 'disable', 'dave'])).toBe('dave was already disabled')
    await recorded('user_disabled', id)

    expect(await ok(['users', 'enable', 'dave'])).toBe(`enabled dave (id ${id})`)
    expect((await me(await loginAs(env, 'dave', 'dave-password-1'))).status).toBe(200)
    await recorded('user_enabled', id)
    expect(await refused(['users', 'disable', 'nobody'])).toBe('tessera admin: no user named "nobody"')
  }, 30_000)

  test('reset-password sets the new one and ends every session (password_changed)', async () => {
    const id = await userId('dave')
    const cookie = await loginAs(env, 'dave', 'dave-password-1')
    expect(await ok(['users', 'reset-password', 'dave', '--password-stdin'], 'dave-password-2\n')).toBe(
      `reset the password of dave (id ${id}); every session of theirs ended`,
    )
    expect((await me(cookie)).status).toBe(401)
    const old = await call(env.app, 'POST', '/user/login', { body: { username: 'dave', password: 'dave-password-1' } })
    expect(old.status).toBe(401)
    await loginAs(env, 'dave', 'dave-password-2')
    await recorded('password_changed', id)
    await recorded('user_sessions_revoked', id, { reason: 'password_reset' })
  }, 20_000)

  test('list shows every account as a table, or JSON', async () => {
    const table = (await ok(['users', 'list'])).split('\n')
    expect(table[0]).toMatch(/^ID\s+USERNAME\s+STATE\s+PERMISSIONS\s+CREATED$/)
    expect(table.some((line) => /^\d+\s+admin\s+active\s+superuser\s/.test(line))).toBe(true)
    const { users } = JSON.parse(await ok(['users', 'list', '--json'])) as { users: { username: string }[] }
    expect(users.map((u) => u.username)).toEqual(['admin', 'carol', 'dave'])
    const disabled = JSON.parse(await ok(['users', 'list', '--disabled', '--json'])) as { users: unknown[] }
    expect(disabled.users).toEqual([])
  }, 20_000)
})

describe('tessera admin permissions', () => {
  test('grant and revoke change live sessions at once', async () => {
    const id = await userId('carol')
    const password = 'carol-password-1'
    await ok(['users', 'reset-password', 'carol', '--password-stdin'], `${password}\n`)
    const cookie = await loginAs(env, 'carol', password)
    expect(await ok(['permissions', 'grant', 'carol', 'user:read'])).toBe(
      `granted user:read to carol (id ${id}); permissions now: user:read`,
    )
    expect(((await (await me(cookie)).json()) as { permissions: string[] }).permissions).toEqual(['user:read'])
    await recorded('permission_granted', id, { permission: 'user:read' })

    expect(await ok(['permissions', 'revoke', 'carol', 'user:read'])).toStartWith('revoked user:read from carol')
    expect(((await (await me(cookie)).json()) as { permissions: string[] }).permissions).toEqual([])
    await recorded('permission_revoked', id)
    expect(await refused(['permissions', 'grant', 'carol', 'root'])).toBe('tessera admin: Unknown permission "root".')
  }, 30_000)

  test("the operator may grant superuser and change a superuser's grants, but not remove the last one", async () => {
    const [adminId, carolId] = [await userId('admin'), await userId('carol')]
    await ok(['permissions', 'grant', 'carol', 'superuser'])
    // Over HTTP only the admin itself could take its own superuser away.
    expect(await ok(['permissions', 'revoke', 'admin', 'superuser'])).toStartWith('revoked superuser from admin')
    expect(await refused(['permissions', 'revoke', 'carol', 'superuser'])).toBe(
      'tessera admin: The last superuser cannot be removed.',
    )
    await ok(['permissions', 'grant', 'admin', 'superuser'])
    await waitFor(
      async () => (await operatorRows()).filter((r) => r.data.permission === 'superuser').length === 3,
      10_000,
      'three superuser changes recorded',
    )
    expect(
      (await operatorRows()).filter((r) => r.data.permission === 'superuser').map((r) => [r.type, r.subjectId]),
    ).toEqual([
      ['permission_granted', carolId],
      ['permission_revoked', adminId],
      ['permission_granted', adminId],
    ])
  }, 30_000)
})

describe('tessera admin sessions', () => {
  test("list one user's sessions or everyone's; end one, a user's, then every session", async () => {
    const daveId = await userId('dave')
    const [first, second] = [
      await loginAs(env, 'dave', 'dave-password-2'),
      await loginAs(env, 'dave', 'dave-password-2'),
    ]
    const adminCookie = await loginAs(env, 'admin', ADMIN_PASSWORD)

    const table = (await ok(['sessions', 'list', 'dave'])).split('\n')
    expect(table[0]).toMatch(/^SESSION\s+USER\s+CREATED\s+LAST SEEN\s+EXPIRES\s+IP\s+USER AGENT$/)
    type Listed = { sessions: { id: string; userId: number; username: string }[] }
    const listed = JSON.parse(await ok(['sessions', 'list', 'dave', '--json'])) as Listed
    // The two just opened and the one left from the password reset's test.
    expect(listed.sessions.map((s) => [s.username, s.userId])).toEqual([
      ['dave', daveId],
      ['dave', daveId],
      ['dave', daveId],
    ])
    const everyone = JSON.parse(await ok(['sessions', 'list', '--all', '--json'])) as Listed
    expect(new Set(everyone.sessions.map((s) => s.username))).toEqual(new Set(['admin', 'carol', 'dave']))
    expect(await refused(['sessions', 'list'])).toBe('tessera admin: name a user, or pass --all')

    type Own = { sessions: { id: string; current: boolean }[] }
    const own = (await (await call(env.app, 'GET', '/sessions', { cookie: second })).json()) as Own
    const secondId = own.sessions.find((s) => s.current)?.id ?? ''
    expect(listed.sessions.map((s) => s.id)).toContain(secondId)
    expect(await ok(['sessions', 'end', 'dave', secondId])).toBe(`ended session ${secondId} of dave`)
    expect([(await me(first)).status, (await me(second)).status]).toEqual([200, 401])
    await recorded('session_revoked', daveId)
    expect(await refused(['sessions', 'end', 'dave', secondId])).toBe('tessera admin: No such session.')

    expect(await ok(['sessions', 'end', 'dave'])).toBe('ended 2 sessions of dave')
    expect((await me(first)).status).toBe(401)
    await recorded('user_sessions_revoked', daveId, { reason: 'ended_by_admin' })

    expect(await ok(['sessions', 'end', '--all'])).toMatch(/^ended \d+ sessions? of \d+ users?$/)
    expect((await me(adminCookie)).status).toBe(401)
    await recorded('all_sessions_revoked', null, { reason: 'ended_everywhere_by_admin' })
  }, 40_000)
})

describe('tessera admin users delete', () => {
  test('deletes the account and its sessions (user_deleted)', async () => {
    const id = await userId('dave')
    const cookie = await loginAs(env, 'dave', 'dave-password-2')
    expect(await ok(['users', 'delete', 'dave'])).toBe(`deleted dave (id ${id})`)
    expect((await me(cookie)).status).toBe(401)
    expect(await userId('dave')).toBe(0)
    await recorded('user_deleted', id)
  }, 20_000)
})
