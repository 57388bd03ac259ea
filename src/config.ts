// Reads and validates the environment once, at boot; nothing else in src/ touches process.env.

import { hostname } from 'node:os'
import { normalizeUsername, USERNAME_RULE } from './lib/limits'

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent'

export interface Config {
  readonly nodeEnv: string
  readonly production: boolean
  readonly port: number
  readonly host: string
  readonly databaseUrl: string
  readonly redisUrl: string
  readonly redisKeyPrefix: string
  readonly adminUsername: string
  readonly adminPassword: string
  /** True when ADMIN_PASSWORD was not set and the development default is in use. */
  readonly adminPasswordIsDefault: boolean
  readonly sessionIdleTimeoutMs: number
  readonly sessionAbsoluteTimeoutMs: number
  /** How often, at most, a session's last-seen time and idle TTL are written back to Redis. */
  readonly sessionTouchIntervalMs: number
  readonly sessionMaxPerUser: number
  readonly sessionCacheSize: number
  readonly cookieName: string
  readonly cookieSecure: boolean
  readonly trustedOrigins: readonly string[]
  readonly trustProxy: boolean
  readonly logLevel: LogLevel
  readonly eventStreamMaxLen: number
  readonly loginMaxFailuresPerAccount: number
  readonly loginMaxFailuresPerIp: number
  readonly loginFailureWindowMs: number
  readonly instanceId: string
  /** Consumer name in the audit group; stable names let a restarted consumer replay its own backlog. */
  readonly auditConsumerName: string
  /** Entries pending this long with a silent audit consumer are taken over by another. */
  readonly auditClaimIdleMs: number
  /** Port on which `bun run audit` serves its /metrics; 0 serves none. */
  readonly auditMetricsPort: number
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

type Env = Record<string, string | undefined>

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
}

/** Parses `90s`, `30m`, `12h`, `7d`, `1h30m` or a bare number of seconds into milliseconds. */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000
  const parts = [...trimmed.matchAll(/(\d+)(ms|s|m|h|d)/g)]
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== trimmed) return undefined
  return parts.reduce((total, [, n, unit]) => total + Number(n) * (DURATION_UNITS[unit as string] ?? 0), 0)
}

function reader(env: Env) {
  const fail = (name: string, why: string): never => {
    throw new ConfigError(`${name}: ${why}`)
  }
  const raw = (name: string) => {
    const value = env[name]
    return value === undefined || value.trim() === '' ? undefined : value.trim()
  }
  return {
    fail,
    raw,
    string: (name: string, fallback: string) => raw(name) ?? fallback,
    int(name: string, fallback: number, min: number, max: number) {
      const value = raw(name)
      if (value === undefined) return fallback
      if (!/^\d+$/.test(value)) return fail(name, `expected a whole number, got "${value}"`)
      const n = Number(value)
      if (n < min || n > max) return fail(name, `expected a number from ${min} to ${max}, got ${n}`)
      return n
    },
    bool(name: string, fallback: boolean) {
      const value = raw(name)?.toLowerCase()
      if (value === undefined) return fallback
      if (['true', '1', 'yes', 'on'].includes(value)) return true
      if (['false', '0', 'no', 'off'].includes(value)) return false
      return fail(name, `expected true or false, got "${value}"`)
    },
    duration(name: string, fallback: string, minMs: number) {
      const value = raw(name) ?? fallback
      const ms = parseDuration(value)
      if (ms === undefined) return fail(name, `expected a duration such as 30m, 12h or 7d, got "${value}"`)
      if (ms < minMs) return fail(name, `must be at least ${minMs / 1000}s, got "${value}"`)
      return ms
    },
    url(name: string, fallback: string, protocols: string[]) {
      const value = raw(name) ?? fallback
      let url: URL
      try {
        url = new URL(value)
      } catch {
        return fail(name, 'is not a valid URL')
      }
      if (!protocols.includes(url.protocol)) return fail(name, `expected a ${protocols.join(' or ')} URL`)
      return value
    },
  }
}

const LOG_LEVELS: LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent']

/** Parses the environment into a frozen Config, throwing a ConfigError that names the variable. */
export function loadConfig(env: Env): Config {
  const r = reader(env)
  const nodeEnv = r.string('NODE_ENV', 'development')
  const production = nodeEnv === 'production'

  const adminPasswordRaw = r.raw('ADMIN_PASSWORD')
  if (production && adminPasswordRaw === undefined) r.fail('ADMIN_PASSWORD', 'is required when NODE_ENV=production')
  if (adminPasswordRaw !== undefined && (adminPasswordRaw.length < 8 || adminPasswordRaw.length > 256)) {
    if (production || adminPasswordRaw !== 'admin') r.fail('ADMIN_PASSWORD', 'must be 8 to 256 characters')
  }

  const adminUsername = r.string('ADMIN_USERNAME', 'admin')
  if (normalizeUsername(adminUsername) === undefined) r.fail('ADMIN_USERNAME', `must be ${USERNAME_RULE}`)

  const idle = r.duration('SESSION_IDLE_TIMEOUT', '30m', 10_000)
  const absolute = r.duration('SESSION_ABSOLUTE_TIMEOUT', '12h', 10_000)
  if (absolute < idle) r.fail('SESSION_ABSOLUTE_TIMEOUT', 'must not be shorter than SESSION_IDLE_TIMEOUT')

  const cookieSecure = r.bool('COOKIE_SECURE', true)
  const cookieBase = r.string('COOKIE_NAME', 'sid')
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(cookieBase.replace(/^__Host-/, ''))) {
    r.fail('COOKIE_NAME', 'must be 1 to 32 letters, digits, dashes or underscores')
  }
  // The __Host- prefix makes browsers refuse the cookie unless it is Secure, host-only and Path=/,
  // so a subdomain or a plain-http page cannot plant or overwrite it.
  const bare = cookieBase.replace(/^__Host-/, '')
  const cookieName = cookieSecure ? `__Host-${bare}` : bare

  const trustedOrigins = (r.raw('TRUSTED_ORIGINS') ?? '')
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean)
    .map((o) => {
      try {
        const url = new URL(o)
        if (url.origin === 'null' || url.origin !== o.replace(/\/$/, '')) throw new Error()
        return url.origin
      } catch {
        return r.fail('TRUSTED_ORIGINS', `"${o}" is not an origin such as https://app.example.com`)
      }
    })

  const prefix = r.string('REDIS_KEY_PREFIX', 'tessera:')
  if (!/^[A-Za-z0-9:_.-]{1,64}$/.test(prefix)) {
    r.fail('REDIS_KEY_PREFIX', 'must be 1 to 64 letters, digits or : _ . -')
  }

  const logLevel = (r.raw('LOG_LEVEL') ?? (production ? 'info' : 'debug')).toLowerCase()
  if (!LOG_LEVELS.includes(logLevel as LogLevel)) r.fail('LOG_LEVEL', `expected one of ${LOG_LEVELS.join(', ')}`)

  const host = r.string('HOST', '0.0.0.0')
  return Object.freeze({
    nodeEnv,
    production,
    port: r.int('PORT', 3000, 0, 65535),
    host,
    databaseUrl: r.url('DATABASE_URL', 'postgres://postgres@127.0.0.1:5432/tessera', ['postgres:', 'postgresql:']),
    redisUrl: r.url('REDIS_URL', 'redis://127.0.0.1:6379/0', ['redis:', 'rediss:']),
    redisKeyPrefix: prefix,
    adminUsername,
    adminPassword: adminPasswordRaw ?? 'admin',
    adminPasswordIsDefault: adminPasswordRaw === undefined,
    sessionIdleTimeoutMs: idle,
    sessionAbsoluteTimeoutMs: absolute,
    sessionTouchIntervalMs: Math.min(5_000, Math.floor(idle / 10)),
    sessionMaxPerUser: r.int('SESSION_MAX_PER_USER', 50, 1, 10_000),
    sessionCacheSize: r.int('SESSION_CACHE_SIZE', 100_000, 0, 10_000_000),
    cookieName,
    cookieSecure,
    trustedOrigins: Object.freeze(trustedOrigins),
    trustProxy: r.bool('TRUST_PROXY', false),
    logLevel: logLevel as LogLevel,
    eventStreamMaxLen: r.int('EVENT_STREAM_MAXLEN', 1_000_000, 1000, 1_000_000_000),
    loginMaxFailuresPerAccount: r.int('LOGIN_MAX_FAILURES_PER_ACCOUNT', 10, 1, 1_000_000),
    loginMaxFailuresPerIp: r.int('LOGIN_MAX_FAILURES_PER_IP', 100, 1, 1_000_000),
    loginFailureWindowMs: r.duration('LOGIN_FAILURE_WINDOW', '15m', 1000),
    instanceId: r.string('INSTANCE_ID', `${hostname()}-${process.pid}`),
    auditConsumerName: r.string('AUDIT_CONSUMER_NAME', `${hostname()}-${process.pid}`),
    auditClaimIdleMs: r.duration('AUDIT_CLAIM_IDLE', '30s', 100),
    auditMetricsPort: r.int('AUDIT_METRICS_PORT', 0, 0, 65535),
  })
}
