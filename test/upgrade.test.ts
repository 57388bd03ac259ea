// Upgrading a single-Redis deployment: sessions made by the release before the session store
// module (cb65bf2, run from a git worktree of it) stay valid on the current code, which reads their
// keys, cookies and eight-part records as they are; logout, revocation and permission checks work
// on them; and the audit trail carries on in the same stream.

import { afterAll, beforeAll, expect, test } from 'bun:test'
import Redis from 'ioredis'
import { createDatabase, type Database } from '../src/db/client'
import { ADMIN_PASSWORD, databaseUrlFor, deleteKeys, REDIS_URL } from './helpers'
import { http, loginVia, type ServerProcess, startServer } from './processes'
import { checkoutRevision, suffix } from './services'

/** The last release that wrote the previous layout (its README's `bun run start`). */
const PREVIOUS_RELEASE = 'cb65bf2'

let previous: ReturnType<typeof checkoutRevision>
let database: Database
const databaseName = `tessera_test_upgrade_${suffix()}`
// Created and migrated by the previous release at its boot, then migrated on by the current code.
const databaseUrl = databaseUrlFor(databaseName)
let redis: Redis
const prefix = `test:upgrade:${Date.now().toString(36)}:`
const running: ServerProcess[] = []

beforeAll(async () => {
  previous = checkoutRevision(PREVIOUS_RELEASE, 'upgrade')
  redis = new Redis(REDIS_URL)
}, 120_000)

afterAll(async () => {
  await Promise.all(running.map((server) => server.stop()))
  await deleteKeys(redis, prefix)
  redis.disconnect()
  await database?.close()
  const admin = createDatabase(databaseUrlFor('postgres'), { max: 1 })
  await admin.sql.unsafe(`drop database if exists "${databaseName}" with (force)`)
  await admin.close()
  previous?.remove()
})

const vars = () => ({ DATABASE_URL: databaseUrl, REDIS_KEY_PREFIX: prefix })

test('sessions of the previous release stay valid on the current code, and end as they should', async () => {
  const old = await startServer(vars(), { root: previous.root })
  running.push(old)
  for (const name of ['ulla', 'vera', 'walt']) {
    expect(
      (await http(old.url, 'POST', '/user', { body: { username: name, password: `${name}-password` } })).status,
    ).toBe(201)
  }
  const admin = await loginVia(old.url, 'admin', ADMIN_PASSWORD)
  const ulla = await loginVia(old.url, 'ulla', 'ulla-password')
  const vera = await loginVia(old.url, 'vera', 'vera-password')
  const walt = await loginVia(old.url, 'walt', 'walt-password')
  const grant = { username: 'ulla', permission: 'audit:read' }
  expect((await http(old.url, 'POST', '/user/assign', { cookie: admin, body: grant })).status).toBe(200)
  // The previous layout: bare cookies, `{auth}` keys, eight-part records.
  expect(ulla).toMatch(/^sid=[A-Za-z0-9_-]{43}$/)
  const [sessionKey] = await redis.keys(`${prefix}{auth}:s:*`)
  expect(((await redis.get(sessionKey ?? '')) ?? '').split('|')).toHaveLength(8)
  const eventsBefore = await redis.xlen(`${prefix}{auth}:events`)
  await old.stop()
  database = createDatabase(databaseUrl, { max: 2 })

  const current = await startServer(vars())
  running.push(current)
  // Every old cookie works as it is, its permissions too.
  for (const cookie of [admin, ulla, vera, walt]) {
    expect((await http(current.url, 'GET', '/user/me', { cookie })).status).toBe(200)
  }
  expect((await http(current.url, 'GET', '/audit', { cookie: ulla })).status).toBe(200)
  expect((await http(current.url, 'GET', '/audit', { cookie: vera })).status).toBe(403)
  // A revoke made now reaches the old session; a logout ends one; an admin ends another's sessions.
  expect(
    (await http(current.url, 'POST', '/user/reauth', { cookie: admin, body: { password: ADMIN_PASSWORD } })).status,
  ).toBe(200)
  expect((await http(current.url, 'POST', '/user/unassign', { cookie: admin, body: grant })).status).toBe(200)
  expect((await http(current.url, 'GET', '/audit', { cookie: ulla })).status).toBe(403)
  expect((await http(current.url, 'POST', '/user/logout', { cookie: vera })).status).toBe(200)
  expect((await http(current.url, 'GET', '/user/me', { cookie: vera })).status).toBe(401)
  const [waltRow] = await database.sql<{ id: number }[]>`select id from users where username = 'walt'`
  const endAll = await http(current.url, 'DELETE', `/admin/users/${waltRow?.id}/sessions`, { cookie: admin })
  expect(endAll.status).toBe(200)
  expect((await http(current.url, 'GET', '/user/me', { cookie: walt })).status).toBe(401)
  // The event stream carries on: the same key, the old entries still there, the new ones after them.
  expect(await redis.xlen(`${prefix}{auth}:events`)).toBeGreaterThan(eventsBefore)
}, 120_000)
