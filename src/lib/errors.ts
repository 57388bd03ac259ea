// One way to fail: every error code Tessera answers with, once, with its status and message; the
// app renders them all in one JSON shape (see app.ts).

import { t } from 'elysia'
import { ReplyError } from 'ioredis'
import { BODY_LIMIT_BYTES, JSON_MAX_DEPTH } from './limits'

/**
 * The error catalogue. A message is a sentence for people; clients act on the code. Messages that
 * name something take it as a parameter, never as free text from the thrower.
 */
export const ERRORS = {
  malformed_json: { status: 400, message: 'The request body is not valid JSON.' },
  malformed_body: { status: 400, message: 'The request body could not be parsed.' },
  json_too_deep: { status: 400, message: `The request body nests JSON more than ${JSON_MAX_DEPTH} levels deep.` },
  invalid_cookie: { status: 400, message: 'A cookie could not be read.' },
  invalid_request: { status: 400, message: 'The request could not be read.' },
  invalid_host: { status: 400, message: 'The Host header does not name a host.' },
  unauthenticated: { status: 401, message: 'A valid session is required.' },
  invalid_credentials: { status: 401, message: 'Invalid username or password.' },
  reauth_required: {
    status: 401,
    message: 'This action needs a recent proof of password: POST /user/reauth, then send it again.',
  },
  forbidden: { status: 403, message: (p: { permission: string }) => `The "${p.permission}" permission is required.` },
  cross_origin_request: {
    status: 403,
    message: 'Cross-origin requests are not allowed; check TRUSTED_ORIGINS.',
  },
  cannot_delegate: {
    status: 403,
    message: (p: { permission: string }) => `You cannot grant or revoke "${p.permission}" without holding it.`,
  },
  protected_superuser: {
    status: 403,
    message: "A superuser's account, permissions and sessions are changed only by a superuser or itself.",
  },
  wrong_password: { status: 403, message: 'The current password is wrong.' },
  registration_closed: { status: 403, message: 'Registration is closed; an administrator creates accounts.' },
  not_found: { status: 404, message: 'No such route.' },
  user_not_found: { status: 404, message: 'No such user.' },
  session_not_found: { status: 404, message: 'No such session.' },
  username_taken: { status: 409, message: 'That username is already taken.' },
  last_superuser: { status: 409, message: 'The last superuser cannot be removed.' },
  password_changed_concurrently: { status: 409, message: 'The password was changed meanwhile; try again.' },
  payload_too_large: { status: 413, message: `Request bodies are limited to ${BODY_LIMIT_BYTES / 1024} KiB.` },
  unsupported_media_type: { status: 415, message: 'Send the body as application/json.' },
  validation_failed: { status: 422, message: (p: { detail: string }) => p.detail },
  unknown_permission: { status: 422, message: (p: { permission: string }) => `Unknown permission "${p.permission}".` },
  too_many_attempts: { status: 429, message: 'Too many failed attempts; try again later.' },
  internal_error: { status: 500, message: 'Something went wrong on our side.' },
  service_unavailable: { status: 503, message: 'A backing service is unavailable; retry shortly.' },
  draining: { status: 503, message: 'This instance is shutting down; send requests to another one.' },
} as const satisfies Record<string, { status: number; message: string | ((params: never) => string) }>

export type ErrorCode = keyof typeof ERRORS
export type ErrorStatus = (typeof ERRORS)[ErrorCode]['status']

type ParamsOf<C extends ErrorCode> = (typeof ERRORS)[C]['message'] extends (params: infer P) => string ? P : never

export type ErrorOptions<C extends ErrorCode> = {
  /** The request field at fault, for the client to point at. */
  field?: string
  headers?: Record<string, string>
  cause?: unknown
} & ([ParamsOf<C>] extends [never] ? { params?: never } : { params: ParamsOf<C> })

type OptionsArg<C extends ErrorCode> = [ParamsOf<C>] extends [never]
  ? [options?: ErrorOptions<C>]
  : [options: ErrorOptions<C>]

export class AppError<C extends ErrorCode = ErrorCode> extends Error {
  override name = 'AppError'
  readonly status: number
  readonly field: string | undefined
  readonly headers: Record<string, string>

  constructor(
    readonly code: C,
    ...[options]: OptionsArg<C>
  ) {
    const entry = ERRORS[code]
    const message =
      typeof entry.message === 'function' ? (entry.message as (p: unknown) => string)(options?.params) : entry.message
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.status = entry.status
    this.field = options?.field
    this.headers = options?.headers ?? {}
  }
}

export const ErrorBody = t.Object(
  {
    error: t.Object({
      code: t.UnionEnum(Object.keys(ERRORS) as [ErrorCode, ...ErrorCode[]], {
        description: 'Stable machine-readable code; the catalogue is in docs/api.md.',
      }),
      message: t.String(),
      requestId: t.String({ description: 'Also sent as the X-Request-Id response header.' }),
      field: t.Optional(t.String({ description: 'The request field that failed validation.' })),
    }),
  },
  { $id: '#/components/schemas/Error', title: 'Error' },
)

export type ErrorBodyType = typeof ErrorBody.static

/** The one JSON body of every error answer. */
export function errorBody(error: AppError, requestId: string): ErrorBodyType {
  return {
    error: {
      code: error.code,
      message: error.message,
      requestId,
      ...(error.field ? { field: error.field } : {}),
    },
  }
}

/** A backing service (Redis or PostgreSQL) cannot be reached: the client should retry shortly. */
export class UnavailableError extends AppError<'service_unavailable'> {
  override name = 'UnavailableError'
  constructor(
    readonly dependency: 'redis' | 'postgres',
    cause: unknown,
  ) {
    super('service_unavailable', { headers: { 'retry-after': '2' }, cause })
  }
}

// Reply errors that mean "not now" rather than "your command is wrong": the first word of a Redis
// error reply is its code.
const TRANSIENT_REDIS_REPLIES = new Set([
  'LOADING',
  'READONLY',
  'CLUSTERDOWN',
  'TRYAGAIN',
  'MASTERDOWN',
  'BUSY',
  'NOREPLICAS',
  'MISCONF',
])

// ioredis exports ReplyError only; its base class is redis-errors' RedisError, which its aborts
// (AbortError, MaxRetriesPerRequestError) extend too.
type ErrorClass = abstract new (...args: never[]) => Error
const RedisReplyError: ErrorClass = ReplyError
const RedisError: ErrorClass = Object.getPrototypeOf(ReplyError)

/**
 * True when an error from a Redis command means the server cannot be used right now. Classified by
 * type: a ReplyError is the server's answer (transient only for the codes above); a RedisError that
 * is not a reply is an aborted command; ioredis rejects commands with a plain Error when no answer
 * can come (connection closed, stream not writable, command timed out). Anything else (our own
 * errors, JavaScript's TypeError and friends) is not an outage.
 */
export function isRedisUnavailable(error: unknown): boolean {
  if (error instanceof RedisReplyError) return TRANSIENT_REDIS_REPLIES.has(String(error.message).split(' ', 1)[0] ?? '')
  if (error instanceof RedisError) return true
  return error instanceof Error && error.constructor === Error
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
    if (e instanceof AppError) return false
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && (PG_UNAVAILABLE_CODES.has(code) || code.startsWith('08'))) return true
  }
  return false
}

/** Rethrows an error from Redis, as a 503 when it means Redis cannot be reached (a promise's onRejected). */
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
