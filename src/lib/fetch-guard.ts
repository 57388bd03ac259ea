// The app's outermost layer, an Elysia `wrap` around its fetch handler: whatever escapes Elysia's
// own error handling still answers the opaque JSON 500 with a request id and one log line, never
// the runtime's HTML or text page. It lives inside the app, so app.handle, app.fetch and a server
// started with app.listen all get it.

import type { Elysia } from 'elysia'
import { AppError, errorBody } from './errors'
import { pathForLog, RESPONSE_HEADERS, requestIdFor } from './http'
import { describeError, errorStack, type Logger } from './logger'

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
function internalError(request: Request, logger: Logger, error: unknown): Response {
  const requestId = attempt(() => requestIdFor(request), crypto.randomUUID())
  logFailure(logger, 'request failed outside the error handler', request, requestId, error)
  return Response.json(errorBody(new AppError('internal_error'), requestId), {
    status: 500,
    headers: { ...RESPONSE_HEADERS, 'x-request-id': requestId },
  })
}

/** The wrap: `app.wrap(guardFetch(logger))`. */
export function guardFetch(logger: Logger): Parameters<Elysia['wrap']>[0] {
  return (handle) =>
    (request: Request): Response | Promise<Response> => {
      try {
        // Elysia types the wrapped handler loosely (as returning Function); it returns the answer.
        const answer = handle(request) as unknown as Response | Promise<Response>
        return answer instanceof Promise ? answer.catch((error) => internalError(request, logger, error)) : answer
      } catch (error) {
        return internalError(request, logger, error)
      }
    }
}
