// Creates the PostgreSQL connection pool and the drizzle handle used by every service.

import { drizzle, type PostgresJsDatabase } from 'drizzle-orm/postgres-js'
import postgres from 'postgres'
import * as schema from './schema'
import { postgresConnection } from './ssl'

export type Db = PostgresJsDatabase<typeof schema>
/** A transaction handle, as `db.transaction` passes it. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0]

export interface Database {
  db: Db
  sql: postgres.Sql
  close(): Promise<void>
}

/**
 * A postgres.js pool for a DATABASE_URL, with its sslmode and certificate files honoured as libpq
 * would (see ssl.ts). Every connection Tessera makes goes through here.
 */
export function openPostgres(url: string, options: postgres.Options<Record<string, postgres.PostgresType>>) {
  const connection = postgresConnection(url)
  return postgres(connection.url, { ...options, ...(connection.ssl === undefined ? {} : { ssl: connection.ssl }) })
}

export function createDatabase(url: string, { max = 10 }: { max?: number } = {}): Database {
  const sql = openPostgres(url, {
    max,
    // Fail fast so an outage becomes a 503 within seconds rather than a hung request.
    connect_timeout: 5,
    idle_timeout: 30,
    // NOTICEs (e.g. "relation already exists" during migrations) are not worth a log line.
    onnotice: () => {},
  })
  // No query logger: statements carry password hashes and would put them in the logs.
  const db = drizzle(sql, { schema })
  return { db, sql, close: () => sql.end({ timeout: 5 }) }
}
