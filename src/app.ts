// Builds the HTTP app from injected dependencies without starting it: tests, benchmarks and
// src/index.ts all call createApp and decide for themselves what to do with it.

import { Elysia, ValidationError } from 'elysia'
import { type AppDeps, createContext } from './context'
import { AppError, type ErrorBodyType, errorBody, isPostgresUnavailable, UnavailableError } from './lib/errors'
import { guardFetch, logFailure } from './lib/fetch-guard'
import {
  assertDeclaredLength,
  assertSameOrigin,
  assertWellFormedHost,
  isJsonMediaType,
  pathForLog,
  REQUEST_ID_HEADER,
  readJsonBody,
  requestIdFor,
  responseHeaders,
} from './lib/http'
import { describeError, errorStack } from './lib/logger'
import { requestScope } from './lib/request-scope'
import { type RouteLabel, routeLabeller } from './lib/route-label'
import { adminRoutes } from './modules/admin'
import { auditRoutes } from './modules/audit'
import { authRoutes } from './modules/auth'
import { authPlugin } from './modules/auth/plugin'
import { docs } from './modules/docs'
import { forwardAuthRoutes, isForwardAuthRequest } from './modules/forward-auth'
import { healthRoutes } from './modules/health'
import { passwordRoutes } from './modules/password'
import { permissionRoutes } from './modules/permissions'
import { sessionRoutes } from './modules/sessions'
import { userRoutes } from './modules/users'

/** The parameters and query of the request, as Elysia read them (strings). */
type RequestInputs = { params?: Record<string, unknown>; query?: Record<string, unknown> }

/**
 * Elysia checks a number in the path or query against its schema after converting it, and reports
 * a failure there without the parameter's name: it is the parameter whose text gave that value.
 */
function coercedField(error: ValidationError, inputs: RequestInputs): string | undefined {
  if (error.type !== 'property') return undefined
  for (const input of [inputs.params, inputs.query]) {
    for (const [name, text] of Object.entries(input ?? {})) {
      if (typeof text === 'string' && text !== '' && Number(text) === error.value) return name
    }
  }
  return undefined
}

function validationFailure(error: ValidationError, inputs: RequestInputs): AppError {
  const first = error.all[0] as
    | { path?: string; summary?: string; message?: string; schema?: { error?: unknown } }
    | undefined
  const field = first?.path?.replace(/^\//, '').replaceAll('/', '.') || coercedField(error, inputs)
  const custom = typeof first?.schema?.error === 'string' ? first.schema.error : undefined
  const message = custom ?? first?.summary ?? first?.message ?? 'Invalid request.'
  const detail = field && !custom ? `${field}: ${message}` : message
  return new AppError('validation_failed', { params: { detail }, field })
}

/** Maps anything thrown to an AppError; undefined for errors no client caused (logged as such). */
function toAppError(code: string | number, error: unknown, inputs: RequestInputs): AppError | undefined {
  if (error instanceof AppError) return error
  // Elysia wraps whatever onParse throws in a ParseError; our parser's own refusals (malformed
  // JSON 400, oversized chunked body 413, form post 415) must keep their status and code.
  if (code === 'PARSE' && error instanceof Error && error.cause instanceof AppError) return error.cause
  if (error instanceof ValidationError) return validationFailure(error, inputs)
  switch (code) {
    case 'NOT_FOUND':
      return new AppError('not_found')
    case 'PARSE':
      return new AppError('malformed_body')
    case 'INVALID_COOKIE_SIGNATURE':
      return new AppError('invalid_cookie')
  }
  // Queries outside withPostgres (e.g. inside a transaction's callback) still mean 503 when the
  // database is gone. Redis calls all go through withRedis, which classifies them.
  if (isPostgresUnavailable(error)) return new UnavailableError('postgres', error)
  return undefined
}

const INTERNAL_ERROR = new AppError('internal_error')

export function createApp(deps: AppDeps) {
  const ctx = createContext(deps)
  const auth = authPlugin(ctx)
  const headers = responseHeaders(ctx.config)
  const onError = ({
    code,
    error,
    set,
    request,
    params,
    query,
  }: {
    code: string | number
    error: unknown
    set: { status?: number | string; headers: Record<string, unknown> }
    request: Request
  } & RequestInputs): ErrorBodyType => {
    const requestId = String(set.headers[REQUEST_ID_HEADER] ?? '')
    let failure: AppError = INTERNAL_ERROR
    try {
      const known = toAppError(code, error, { params, query })
      if (known === undefined) {
        ctx.logger.error('unhandled error', {
          requestId,
          method: request.method,
          path: pathForLog(request),
          error: describeError(error),
          stack: errorStack(error),
        })
      } else {
        failure = known
        if (failure instanceof UnavailableError) {
          ctx.metrics.dependencyErrors.inc({ dependency: failure.dependency })
          ctx.logger.warn('dependency unavailable', {
            requestId,
            dependency: failure.dependency,
            error: describeError(failure.cause),
          })
        }
      }
    } catch (handlerFailure) {
      // Whatever the handler itself fails on (a stack overflow, a throwing getter) still gets the
      // JSON 500 below, and one log line that reads nothing more of the original error.
      failure = INTERNAL_ERROR
      logFailure(ctx.logger, 'error handler failed', request, requestId, handlerFailure)
    }
    set.status = failure.status
    Object.assign(set.headers, failure.headers)
    set.headers['content-type'] = 'application/json; charset=utf-8'
    return errorBody(failure, requestId)
  }

  // Built at the first request, when every module's routes are in the table.
  let labelRoute: RouteLabel | undefined
  const routeOf: RouteLabel = (method, path) => {
    labelRoute ??= routeLabeller(app.routes)
    return labelRoute(method, path)
  }

  const app = new Elysia({
    name: 'tessera',
    seed: ctx.id,
    // Unknown fields are refused (422), not silently dropped.
    normalize: false,
    // No schema here uses t.Transform, so responses need no encoding pass.
    encodeSchema: false,
  })
    .wrap(guardFetch({ logger: ctx.logger, headers, requestDuration: ctx.metrics.requestDuration, routeOf }))
    .onRequest(({ request, set }) => {
      Object.assign(set.headers, headers)
      set.headers[REQUEST_ID_HEADER] = requestScope.getStore()?.requestId ?? requestIdFor(request)
      // A draining instance asks keep-alive clients to reconnect, so that by the time it stops
      // listening no connection is left for a client to send a request into as it closes.
      if (ctx.drain.draining) set.headers.connection = 'close'
      assertWellFormedHost(request)
      // Forward auth carries the original request's headers, body-less: see isForwardAuthRequest.
      if (isForwardAuthRequest(request)) return
      assertDeclaredLength(request)
      assertSameOrigin(request, ctx.config.trustedOrigins)
    })
    .onParse(async ({ request, contentType }) => {
      if (isForwardAuthRequest(request)) return ''
      if (isJsonMediaType(contentType)) return (await readJsonBody(request)) ?? {}
      if (request.headers.get('content-length') === '0' || request.body === null) return undefined
      // Forms and text are refused outright: it also closes the classic cross-site form POST.
      throw new AppError('unsupported_media_type')
    })
    .onError(onError)
    .use(docs(ctx.config))
    .use(healthRoutes(ctx))
    .use(permissionRoutes)
    .use(authRoutes(ctx, auth))
    .use(userRoutes(ctx, auth))
    .use(auditRoutes(ctx, auth))
    .use(sessionRoutes(ctx, auth))
    .use(passwordRoutes(ctx, auth))
    .use(adminRoutes(ctx, auth))
    .use(forwardAuthRoutes(ctx))
  return app
}

export type App = ReturnType<typeof createApp>
