// One way to fail: domain errors carry an HTTP status and a stable code; the app renders them all alike.

import { t } from 'elysia'

export class AppError extends Error {
  override name = 'AppError'
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
    readonly field?: string,
  ) {
    super(message)
  }
}

export const unauthenticated = () => new AppError(401, 'unauthenticated', 'A valid session is required.')
export const forbidden = (permission?: string) =>
  new AppError(403, 'forbidden', permission ? `The "${permission}" permission is required.` : 'Not allowed.')

/** A backing service (Redis or PostgreSQL) cannot be reached: the client should retry shortly. */
export class UnavailableError extends AppError {
  override name = 'UnavailableError'
  constructor(
    readonly dependency: 'redis' | 'postgres',
    override readonly cause: unknown,
  ) {
    super(503, 'service_unavailable', 'A backing service is unavailable; retry shortly.', { 'retry-after': '2' })
  }
}

export const ErrorBody = t.Object(
  {
    error: t.Object({
      code: t.String({ description: 'Stable machine-readable code, e.g. "unauthenticated".' }),
      message: t.String(),
      requestId: t.String({ description: 'Also sent as the X-Request-Id response header.' }),
      field: t.Optional(t.String({ description: 'The request field that failed validation.' })),
    }),
  },
  { $id: '#/components/schemas/Error', title: 'Error' },
)

export type ErrorBodyType = typeof ErrorBody.static

// Redis replies that mean "not now" rather than "your command is wrong".
const TRANSIENT_REDIS_REPLIES = /^(LOADING|READONLY|CLUSTERDOWN|TRYAGAIN|MASTERDOWN|BUSY|NOREPLICAS|MISCONF)\b/

/** True when a Redis error means the server cannot be used right now (as opposed to a bug). */
export function isRedisUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false
  if (error.name === 'ReplyError') return TRANSIENT_REDIS_REPLIES.test(error.message)
  // ioredis connection-level failures: closed stream, offline queue disabled, retries exhausted, timeouts.
  return (
    error.name === 'MaxRetriesPerRequestError' ||
    /Connection is closed|Stream isn't writeable|Command timed out|connect ECONNREFUSED|ETIMEDOUT|ECONNRESET|EPIPE|Connection ended|enableOfflineQueue/i.test(
      error.message,
    )
  )
}

// SQLSTATE classes and postgres.js codes that mean the database is unreachable or shutting down.
const PG_UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EPIPE',
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_DESTROYED',
  'CONNECTION_ENDED',
  '57P01',
  '57P02',
  '57P03',
  '53300',
  '3D000',
])

/** True when a PostgreSQL (or drizzle-wrapped) error means the database cannot be reached. */
export function isPostgresUnavailable(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && (PG_UNAVAILABLE_CODES.has(code) || code.startsWith('08'))) return true
  }
  return false
}

/** Rethrows a Redis error, as a 503 when it means Redis cannot be reached (a promise's onRejected). */
export function rethrowRedis(error: unknown): never {
  if (isRedisUnavailable(error)) throw new UnavailableError('redis', error)
  throw error
}

/** Runs a Redis operation, turning connection failures into a 503. */
export async function withRedis<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation()
  } catch (error) {
    rethrowRedis(error)
  }
}

/** Runs a PostgreSQL operation, turning connection failures into a 503. */
export async function withPostgres<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation()
  } catch (error) {
    if (isPostgresUnavailable(error)) throw new UnavailableError('postgres', error)
    throw error
  }
}
