// Structured one-line JSON logs. Callers pass fields, never raw tokens or passwords.

import { DrizzleQueryError } from 'drizzle-orm'

import type { LogLevel } from '../config'

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void
  info(message: string, fields?: Record<string, unknown>): void
  warn(message: string, fields?: Record<string, unknown>): void
  error(message: string, fields?: Record<string, unknown>): void
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 }

export function createLogger(level: LogLevel, write: (line: string) => void = (l) => console.log(l)): Logger {
  const threshold = RANK[level]
  const log = (at: Exclude<LogLevel, 'silent'>) => (message: string, fields?: Record<string, unknown>) => {
    if (RANK[at] < threshold) return
    write(JSON.stringify({ time: new Date().toISOString(), level: at, message, ...fields }))
  }
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') }
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
