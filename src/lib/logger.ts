// Structured logs through pino: one JSON object per line, always. Callers pass fields, never raw
// tokens or passwords; redaction by path is the second line of defence for a field that should not
// have been logged (a cookie header, a password in a body), and a line written while a request is
// served carries that request's id (request-scope.ts).

import { DrizzleQueryError } from 'drizzle-orm'
import pino from 'pino'

import type { LogLevel } from '../config'
import { currentRequestId } from './request-scope'

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void
  info(message: string, fields?: Record<string, unknown>): void
  warn(message: string, fields?: Record<string, unknown>): void
  error(message: string, fields?: Record<string, unknown>): void
}

/**
 * Field paths whose values are replaced by "[redacted]" wherever a caller put them, at the top
 * level or one object down (headers, a request body, an error's details).
 */
export const REDACTED_PATHS = [
  'password',
  'newPassword',
  'currentPassword',
  'token',
  'cookie',
  'authorization',
  'setCookie',
  'set-cookie',
  '*.password',
  '*.newPassword',
  '*.currentPassword',
  '*.token',
  '*.cookie',
  '*.authorization',
  '*["set-cookie"]',
  '*.setCookie',
]

const REQUEST_ID_NONE = {}

/**
 * A logger at `level`, writing to stdout, or to `write` (one line at a time, without its newline).
 * Writes are synchronous, so the last lines before an exit are never lost.
 */
export function createLogger(level: LogLevel, write?: (line: string) => void): Logger {
  const destination = write
    ? { write: (chunk: string) => write(chunk.endsWith('\n') ? chunk.slice(0, -1) : chunk) }
    : pino.destination({ fd: 1, sync: true })
  const logger = pino(
    {
      level,
      // The process's own facts belong to whoever collects the lines (a container runtime).
      base: undefined,
      messageKey: 'message',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      // A caller's own requestId field wins: the error handler names the request it reports on.
      mixin: () => {
        const requestId = currentRequestId()
        return requestId === undefined ? REQUEST_ID_NONE : { requestId }
      },
    },
    destination,
  )
  const at =
    (method: 'debug' | 'info' | 'warn' | 'error') =>
    (message: string, fields?: Record<string, unknown>): void => {
      if (fields) logger[method](fields, message)
      else logger[method](message)
    }
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }
}

export const silentLogger: Logger = createLogger('silent')

/**
 * A loggable description of an error. Drizzle's query errors embed the statement's parameters
 * (password hashes among them), so only the underlying driver error's code and message are kept.
 */
export function describeError(error: unknown): string {
  const e = unwrapQueryError(error)
  if (!(e instanceof Error)) return String(e)
  const code = (e as { code?: unknown }).code
  return code ? `${e.name} ${String(code)}: ${e.message}` : `${e.name}: ${e.message}`
}

function unwrapQueryError(error: unknown): unknown {
  let e = error
  while (e instanceof DrizzleQueryError && e.cause) e = e.cause
  return e
}

/** The stack of the underlying error, for the same reason as describeError. */
export function errorStack(error: unknown): string | undefined {
  const e = unwrapQueryError(error)
  return e instanceof DrizzleQueryError ? undefined : e instanceof Error ? e.stack : undefined
}
