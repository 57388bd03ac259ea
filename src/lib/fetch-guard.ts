// The app's outermost layer, an Elysia `wrap` around its fetch handler: every request runs in its
// request scope (request-scope.ts), requests to a short host name are routed by their real path,
// and whatever escapes Elysia's own error handling still answers the opaque JSON 500 with a request
// id and one log line, never the runtime's HTML or text page. It lives inside the app, so
// app.handle, app.fetch and a server started with app.listen all get it.

import type { Elysia } from 'elysia'
import { AppError, errorBody } from './errors'
import { pathForLog, requestIdFor } from './http'
import { describeError, errorStack, type Logger } from './logger'
import type { RequestDurations } from './metrics'
import { type RequestScope, requestScope } from './request-scope'
import type { RouteLabel } from './route-label'

/** Runs `read`, or gives `fallback` when reading the error throws too (a hostile getter, a Proxy). */
function attempt<T>(read: () => T, fallback: T): T {
  try {
    return read()
  } catch {
    return fallback
  }
}

/**
 * Logs one JSON line about a failure, touching the error only through guarded reads: it is called
 * when something already failed, and must neither throw nor print a multi-line stack.
 */
export function logFailure(logger: Logger, message: string, request: Request, requestId: string, error: unknown): void {
  try {
    logger.error(message, {
      requestId,
      method: request.method,
      path: pathForLog(request),
      error: attempt(() => describeError(error).slice(0, 1000), 'an error that cannot be described'),
      stack: attempt(() => errorStack(error), undefined),
    })
  } catch {
    // Nothing is left to report with.
  }
}

/** The opaque 500 in the one error shape, with the headers every answer carries. */
function internalError(request: Request, guard: Guard, error: unknown, requestId?: string): Response {
  requestId ??= attempt(() => requestIdFor(request), crypto.randomUUID())
  logFailure(guard.logger, 'request failed outside the error handler', request, requestId, error)
  return Response.json(errorBody(new AppError('internal_error'), requestId), {
    status: 500,
    headers: { ...guard.headers, 'x-request-id': requestId },
  })
}

/**
 * Elysia's router takes the path from the first "/" at or after this index of request.url, which
 * assumes a host of at least four characters ("http://" is seven): with `Host: abc` it would route
 * "http://abc/auth/verify" as "/verify".
 */
const ROUTER_PATH_FROM = 11

/**
 * The URL with a placeholder user name before a host too short for the router, or undefined when
 * the router reads the URL right as it is. A user name changes neither the origin, the host, the
 * path nor the query, so every other reader of request.url sees the same request.
 */
export function routableUrl(url: string): string | undefined {
  // For http:// and https:// alike, index 7 is never the path's own slash.
  const pathStart = url.indexOf('/', 8)
  if (pathStart >= ROUTER_PATH_FROM || pathStart < 0 || !url.startsWith('http')) return undefined
  const hostStart = url.indexOf('//') + 2
  const padding = '_'.repeat(Math.max(1, ROUTER_PATH_FROM - pathStart - 1))
  return `${url.slice(0, hostStart)}${padding}@${url.slice(hostStart)}`
}

/**
 * Runs the handler with request.url reading as `url` while Elysia takes the path from it (it does
 * so first, synchronously), then gives the caller's request its own URL back.
 */
function handleAs(handle: (request: Request) => unknown, request: Request, url: string): unknown {
  Object.defineProperty(request, 'url', { value: url, configurable: true })
  try {
    return handle(request)
  } finally {
    Reflect.deleteProperty(request, 'url')
  }
}

interface Guard {
  logger: Logger
  /** Observed for every answer, by method, route and status. */
  requestDuration: RequestDurations
  /** The declared route a method and path take, for the histogram. */
  routeOf: RouteLabel
  /** The headers every answer carries (responseHeaders). */
  headers: Readonly<Record<string, string>>
}

/**
 * Runs the app's handler on the request, as the router must see it, and observes the answer. Runs
 * inside the request's scope, and the reaction to the answer is attached there too: attached
 * outside it, Bun 1.4 let the scope leak into the caller that awaited the answer (a test shows it).
 */
function serve(
  handle: (request: Request) => unknown,
  request: Request,
  guard: Guard,
  scope: RequestScope,
): Response | Promise<Response> {
  const url = routableUrl(request.url)
  // Elysia types the wrapped handler loosely (as returning Function); it returns the answer.
  const answer = (url === undefined ? handle(request) : handleAs(handle, request, url)) as Response | Promise<Response>
  if (!(answer instanceof Promise)) return observed(guard, request, scope, answer)
  // One reaction for both outcomes: this runs on every request.
  return answer.then(
    (response) => observed(guard, request, scope, response),
    (error) => observed(guard, request, scope, internalError(request, guard, error, scope.requestId)),
  )
}

/** Counts the answer in the duration histogram; a request no route takes is `unmatched`. */
function observed(guard: Guard, request: Request, scope: RequestScope, response: Response): Response {
  const { method } = request
  const seconds = (performance.now() - scope.startedAt) / 1000
  guard.requestDuration.record(method, guard.routeOf(method, pathForLog(request)), response.status, seconds)
  return response
}

/**
 * The wrap: `app.wrap(guardFetch({ logger, headers, requestDuration, routeOf }))`. Everything the
 * request causes runs in its request scope: the id every log line carries, the start the duration
 * histogram counts from.
 */
export function guardFetch(guard: Guard): Parameters<Elysia['wrap']>[0] {
  return (handle) =>
    (request: Request): Response | Promise<Response> => {
      let scope: RequestScope | undefined
      try {
        scope = { requestId: requestIdFor(request), startedAt: performance.now() }
        return requestScope.run(scope, serve, handle, request, guard, scope)
      } catch (error) {
        const response = internalError(request, guard, error, scope?.requestId)
        return scope ? observed(guard, request, scope, response) : response
      }
    }
}
