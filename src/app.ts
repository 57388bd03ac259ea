// Builds the HTTP app from injected dependencies without starting it: tests, benchmarks and
// src/index.ts all call createApp and decide for themselves what to do with it.

import { Elysia, ValidationError } from 'elysia'
import { type AppContext, type AppDeps, createContext } from './context'
import { AppError, type ErrorBodyType, isPostgresUnavailable, isRedisUnavailable, UnavailableError } from './lib/errors'
import { assertDeclaredLength, assertSameOrigin, readJsonBody, requestIdFor } from './lib/http'
import { describeError, errorStack } from './lib/logger'
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

const REQUEST_ID = 'x-request-id'

function validationDetails(error: ValidationError): { field?: string; message: string } {
  const first = error.all[0] as
    | { path?: string; summary?: string; message?: string; schema?: { error?: unknown } }
    | undefined
  const field = first?.path?.replace(/^\//, '').replaceAll('/', '.') || undefined
  const custom = typeof first?.schema?.error === 'string' ? first.schema.error : undefined
  const message = custom ?? first?.summary ?? first?.message ?? 'Invalid request.'
  return { field, message: field && !custom ? `${field}: ${message}` : message }
}

/** Maps anything thrown to the one error shape; unknown errors are logged and stay opaque. */
function toErrorResponse(ctx: AppContext, code: string | number, error: unknown): AppError {
  if (error instanceof AppError) return error
  // Elysia wraps whatever onParse throws in a ParseError; our parser's own refusals (malformed
  // JSON 400, oversized chunked body 413, form post 415) must keep their status and code.
  if (code === 'PARSE' && error instanceof Error && error.cause instanceof AppError) return error.cause
  if (error instanceof ValidationError) {
    const { field, message } = validationDetails(error)
    return new AppError(422, 'validation_failed', message, {}, field)
  }
  switch (code) {
    case 'NOT_FOUND':
      return new AppError(404, 'not_found', 'No such route.')
    case 'PARSE':
      return new AppError(400, 'malformed_body', 'The request body could not be parsed.')
    case 'INVALID_COOKIE_SIGNATURE':
      return new AppError(400, 'invalid_cookie', 'A cookie could not be read.')
  }
  if (isRedisUnavailable(error)) return new UnavailableError('redis', error)
  if (isPostgresUnavailable(error)) return new UnavailableError('postgres', error)
  ctx.logger.error('unhandled error', {
    error: describeError(error),
    stack: errorStack(error),
  })
  return new AppError(500, 'internal_error', 'Something went wrong on our side.')
}

export function createApp(deps: AppDeps) {
  const ctx = createContext(deps)
  const auth = authPlugin(ctx)
  return new Elysia({
    name: 'tessera',
    seed: ctx.id,
    // Unknown fields are refused (422), not silently dropped.
    normalize: false,
    // No schema here uses t.Transform, so responses need no encoding pass.
    encodeSchema: false,
  })
    .onRequest(({ request, set }) => {
      set.headers[REQUEST_ID] = requestIdFor(request)
      // Nothing an auth service answers should be cached, least of all a Set-Cookie.
      set.headers['cache-control'] = 'no-store'
      set.headers['x-content-type-options'] = 'nosniff'
      set.headers['referrer-policy'] = 'no-referrer'
      // Forward auth carries the original request's headers, body-less: see isForwardAuthRequest.
      if (isForwardAuthRequest(request)) return
      assertDeclaredLength(request)
      assertSameOrigin(request, ctx.config.trustedOrigins)
    })
    .onParse(async ({ request, contentType }) => {
      if (isForwardAuthRequest(request)) return ''
      if (contentType.startsWith('application/json')) return (await readJsonBody(request)) ?? {}
      if (request.headers.get('content-length') === '0' || request.body === null) return undefined
      // Forms and text are refused outright: it also closes the classic cross-site form POST.
      throw new AppError(415, 'unsupported_media_type', 'Send the body as application/json.')
    })
    .onError(({ code, error, set }) => {
      const failure = toErrorResponse(ctx, code, error)
      if (failure instanceof UnavailableError) {
        ctx.logger.warn('dependency unavailable', {
          dependency: failure.dependency,
          error: describeError(failure.cause),
        })
      }
      set.status = failure.status
      Object.assign(set.headers, failure.headers)
      set.headers['content-type'] = 'application/json; charset=utf-8'
      const requestId = String(set.headers[REQUEST_ID] ?? '')
      const body: ErrorBodyType = {
        error: {
          code: failure.code,
          message: failure.message,
          requestId,
          ...(failure.field ? { field: failure.field } : {}),
        },
      }
      return body
    })
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
}

export type App = ReturnType<typeof createApp>
