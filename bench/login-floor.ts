// What any login over HTTP costs at the least, beside POST /user/login: a bare Bun server that parses
// the JSON body and runs one argon2id verification at Tessera's parameters (LOGIN_FLOOR=argon2), or
// first reads the user from PostgreSQL with Tessera's own prepared query (LOGIN_FLOOR=pg). No rate
// limit, no session, no event, no Elysia. bench/run.ts starts it with PORT and DATABASE_URL.

import { createDatabase } from '../src/db/client'
import { hashPassword, verifyPassword } from '../src/modules/users/password'
import { findUserByUsername } from '../src/modules/users/service'

const withUser = process.env.LOGIN_FLOOR === 'pg'
const database = withUser ? createDatabase(process.env.DATABASE_URL ?? '', { max: 4 }) : undefined
// Without the read, every body is checked against one hash of the benchmark's password.
const sharedHash = withUser ? '' : await hashPassword(process.env.BENCH_PASSWORD ?? '')

const server = Bun.serve({
  port: Number(process.env.PORT),
  hostname: '127.0.0.1',
  async fetch(request) {
    if (request.method === 'GET') return Response.json({ status: 'ok' })
    const { username, password } = (await request.json()) as { username: string; password: string }
    const passwordHash = database ? (await findUserByUsername(database.db, username))?.passwordHash : sharedHash
    const ok = passwordHash !== undefined && (await verifyPassword(passwordHash, password))
    return Response.json({ ok }, { status: ok ? 200 : 401 })
  },
})

const stop = () => {
  server.stop(true)
  void (database?.close() ?? Promise.resolve()).finally(() => process.exit(0))
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
