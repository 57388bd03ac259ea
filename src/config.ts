// Reads and validates the environment once, at boot; nothing else in src/ touches process.env.
// One TypeBox schema is the single source of every setting: its variable, default, bounds and
// description, and (through Static) the Config type.

import { hostname } from 'node:os'
import { type Static, Type as T, type TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { postgresTlsSettings } from './db/ssl'
import { normalizeUsername, PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, USERNAME_RULE } from './lib/limits'
import { redactNode } from './lib/redact'

export class ConfigError extends Error {
  override name = 'ConfigError'
}

type Env = Record<string, string | undefined>

/** How a variable's text becomes a value. */
type Parse = 'string' | 'url' | 'int' | 'bool' | 'duration' | 'origins' | 'nodes'

interface EnvOptions {
  /** The environment variable. */
  env: string
  parse: Parse
  /** The value when unset, in the variable's own notation (so docs can quote it). */
  default?: string
  /** What a valid value looks like, for the error when one is not. */
  hint?: string
  description: string
}

const DEFAULT_NAME = `${hostname()}-${process.pid}`

const str = (options: Omit<EnvOptions, 'parse'>, schema: Parameters<typeof T.String>[0] = {}) =>
  T.String({ ...schema, ...options, parse: 'string' })
const int = (options: Omit<EnvOptions, 'parse'>, minimum: number, maximum: number) =>
  T.Integer({
    ...options,
    minimum,
    maximum,
    parse: 'int',
    hint: `expected a whole number from ${minimum} to ${maximum}`,
  })
const url = (options: Omit<EnvOptions, 'parse'>, protocols: string) =>
  T.String({ ...options, pattern: `^(${protocols})://`, parse: 'url' })
const bool = (options: Omit<EnvOptions, 'parse'>) => T.Boolean({ ...options, parse: 'bool' })
/** Milliseconds, written as `90s`, `30m`, `12h`, `7d`, `1h30m` or bare seconds. */
const duration = (options: Omit<EnvOptions, 'parse'>, minimumMs: number) =>
  T.Integer({ ...options, minimum: minimumMs, parse: 'duration', hint: `must be at least ${minimumMs / 1000}s` })
/** A setting computed from others: no variable of its own. */
const derived = <S extends TSchema>(schema: S) => schema

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const

export const ConfigSchema = T.Object({
  nodeEnv: str({ env: 'NODE_ENV', default: 'development', description: '`production` enables the strict checks.' }),
  production: derived(T.Boolean({ description: 'NODE_ENV is production.' })),
  port: int({ env: 'PORT', default: '3000', description: 'HTTP port.' }, 0, 65535),
  host: str({ env: 'HOST', default: '0.0.0.0', description: 'Address to listen on.' }, { minLength: 1 }),
  reusePort: bool({
    env: 'REUSE_PORT',
    default: 'false',
    description: 'Let several processes listen on PORT together (SO_REUSEPORT); otherwise a busy port stops the boot.',
  }),
  databaseUrl: url(
    {
      env: 'DATABASE_URL',
      default: 'postgres://postgres@127.0.0.1:5432/tessera',
      hint: 'expected a postgres:// URL',
      description:
        'PostgreSQL; the database is created if missing. Required in production. libpq’s sslmode, sslrootcert, sslcert and sslkey parameters are honoured.',
    },
    'postgres|postgresql',
  ),
  migrateOnBoot: bool({
    env: 'MIGRATE_ON_BOOT',
    description:
      'The server and the audit consumer create the database and apply pending migrations at boot; `true` outside production, `false` in production, where `tessera migrate` does it.',
  }),
  redisUrl: url(
    {
      env: 'REDIS_URL',
      default: 'redis://127.0.0.1:6379/0',
      hint: 'expected a redis:// or rediss:// URL',
      description: 'Redis 7 or newer. Required in production, unless REDIS_CLUSTER_NODES is set.',
    },
    'redis|rediss',
  ),
  redisClusterNodes: T.Array(T.String(), {
    env: 'REDIS_CLUSTER_NODES',
    parse: 'nodes',
    default: '',
    description:
      'Seed nodes of a Redis Cluster, `host:port` (or URLs with credentials and TLS, as REDIS_URL), comma-separated; empty: one Redis at REDIS_URL.',
  }),
  redisTlsCaFile: str({
    env: 'REDIS_TLS_CA_FILE',
    default: '',
    description: 'PEM file of the CA(s) that signed the Redis certificate, for rediss://; empty: the system’s CAs.',
  }),
  redisTlsCertFile: str({
    env: 'REDIS_TLS_CERT_FILE',
    default: '',
    description:
      'PEM client certificate for rediss://, when Redis asks for one (tls-auth-clients); with REDIS_TLS_KEY_FILE.',
  }),
  redisTlsKeyFile: str({
    env: 'REDIS_TLS_KEY_FILE',
    default: '',
    description: 'PEM private key of REDIS_TLS_CERT_FILE.',
  }),
  redisPartitions: int(
    {
      env: 'REDIS_PARTITIONS',
      description:
        'Partitions users are spread over (1 with a single Redis, 16 with a cluster); fixed for the life of a deployment’s sessions.',
    },
    1,
    1024,
  ),
  redisKeyPrefix: str(
    {
      env: 'REDIS_KEY_PREFIX',
      default: 'tessera:',
      hint: 'must be 1 to 64 letters, digits or : _ . -',
      description: 'Prefix of every Redis key.',
    },
    // No glob characters: the prefix is used in SCAN patterns.
    { pattern: '^[A-Za-z0-9:_.-]{1,64}$' },
  ),
  adminUsername: str({
    env: 'ADMIN_USERNAME',
    default: 'admin',
    hint: `must be ${USERNAME_RULE}`,
    description: 'The superuser seeded on a database that has none.',
  }),
  adminPassword: str({
    env: 'ADMIN_PASSWORD',
    hint: `must be ${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters`,
    description: 'Its password; required in production (the development default is `admin`).',
  }),
  adminPasswordIsDefault: derived(T.Boolean({ description: 'ADMIN_PASSWORD was not set.' })),
  sessionIdleTimeoutMs: duration(
    { env: 'SESSION_IDLE_TIMEOUT', default: '30m', description: 'A session unused this long ends.' },
    10_000,
  ),
  sessionAbsoluteTimeoutMs: duration(
    { env: 'SESSION_ABSOLUTE_TIMEOUT', default: '12h', description: 'A session ends this long after login.' },
    10_000,
  ),
  sessionTouchIntervalMs: derived(
    T.Integer({ description: 'How often, at most, last-seen and the idle TTL are written back to Redis.' }),
  ),
  sessionMaxPerUser: int(
    { env: 'SESSION_MAX_PER_USER', default: '50', description: 'Past it, a login ends the oldest session.' },
    1,
    10_000,
  ),
  sessionCacheSize: int(
    { env: 'SESSION_CACHE_SIZE', default: '100000', description: 'Sessions cached per instance; 0 turns it off.' },
    0,
    10_000_000,
  ),
  cookieName: str(
    {
      env: 'COOKIE_NAME',
      default: 'sid',
      hint: 'must be 1 to 32 letters, digits, dashes or underscores',
      description: 'Session cookie name; `__Host-` is prefixed when COOKIE_SECURE is on.',
    },
    { pattern: '^(__Host-)?[A-Za-z0-9_-]{1,32}$' },
  ),
  cookieSecure: bool({
    env: 'COOKIE_SECURE',
    default: 'true',
    description: 'Secure cookie with the `__Host-` prefix; false only for plain-http development.',
  }),
  trustedOrigins: T.Array(T.String(), {
    env: 'TRUSTED_ORIGINS',
    parse: 'origins',
    default: '',
    description: 'Other origins allowed to send cookie-authenticated state changes, comma-separated.',
  }),
  trustProxy: bool({
    env: 'TRUST_PROXY',
    default: 'false',
    description: 'Take the client address from the last X-Forwarded-For hop.',
  }),
  logLevel: T.Union(
    LOG_LEVELS.map((level) => T.Literal(level)),
    {
      env: 'LOG_LEVEL',
      parse: 'string',
      hint: `expected one of ${LOG_LEVELS.join(', ')}`,
      description: '`info` in production, `debug` otherwise.',
    },
  ),
  eventStreamMaxLen: int(
    {
      env: 'EVENT_STREAM_MAXLEN',
      default: '1000000',
      description: 'Approximate length the event stream is trimmed to.',
    },
    1000,
    1_000_000_000,
  ),
  loginMaxFailuresPerAccount: int(
    {
      env: 'LOGIN_MAX_FAILURES_PER_ACCOUNT',
      default: '10',
      description: 'Failed logins per account and client address per window (ten times this across all clients).',
    },
    1,
    1_000_000,
  ),
  loginMaxFailuresPerIp: int(
    { env: 'LOGIN_MAX_FAILURES_PER_IP', default: '100', description: 'Failed logins per client address per window.' },
    1,
    1_000_000,
  ),
  loginFailureWindowMs: duration(
    { env: 'LOGIN_FAILURE_WINDOW', default: '15m', description: 'The window of the login limits.' },
    1000,
  ),
  reauthWindowMs: duration(
    {
      env: 'REAUTH_WINDOW',
      default: '10m',
      description:
        'Sensitive actions (permission and account changes, ending everyone’s sessions) need a password proven this recently.',
    },
    1000,
  ),
  rateLimitIpv6PrefixBits: int(
    {
      env: 'RATE_LIMIT_IPV6_PREFIX',
      default: '64',
      description:
        'IPv6 clients are counted by this many leading bits of their address (one subscriber often holds a /64).',
    },
    32,
    128,
  ),
  registration: T.Union([T.Literal('open'), T.Literal('closed')], {
    env: 'REGISTRATION',
    parse: 'string',
    default: 'open',
    hint: 'expected open or closed',
    description: '`closed`: POST /user is refused and only an administrator creates accounts.',
  }),
  registrationMaxPerIp: int(
    { env: 'REGISTRATION_MAX_PER_IP', default: '10', description: 'Registrations per client address per window.' },
    1,
    1_000_000,
  ),
  registrationWindowMs: duration(
    { env: 'REGISTRATION_WINDOW', default: '1h', description: 'The window of the registration limit.' },
    1000,
  ),
  instanceId: str(
    {
      env: 'INSTANCE_ID',
      default: DEFAULT_NAME,
      description: 'Names this instance in events; host and pid by default.',
    },
    { minLength: 1, maxLength: 128 },
  ),
  auditConsumerName: str(
    {
      env: 'AUDIT_CONSUMER_NAME',
      default: DEFAULT_NAME,
      description: 'Consumer name in the audit group; a stable name lets a restarted consumer replay its own backlog.',
    },
    { minLength: 1, maxLength: 128 },
  ),
  auditClaimIdleMs: duration(
    {
      env: 'AUDIT_CLAIM_IDLE',
      default: '30s',
      description: 'Entries pending this long with a silent audit consumer are taken over by another.',
    },
    100,
  ),
  shutdownDelayMs: duration(
    {
      env: 'SHUTDOWN_DELAY',
      description:
        'After SIGTERM, /readyz answers 503 while requests are still served this long, so load balancers stop sending new ones (`5s` in production, `0s` otherwise).',
    },
    0,
  ),
  shutdownGraceMs: duration(
    {
      env: 'SHUTDOWN_GRACE',
      default: '10s',
      description:
        'From SIGTERM, how long requests may still run (SHUTDOWN_DELAY included) before the connections left are closed.',
    },
    0,
  ),
  auditMetricsPort: int(
    { env: 'AUDIT_METRICS_PORT', default: '0', description: 'Port of the audit consumer’s /metrics; 0 serves none.' },
    0,
    65535,
  ),
})

export type Config = Readonly<Static<typeof ConfigSchema>>

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** Parses `90s`, `30m`, `12h`, `7d`, `1h30m` or a bare number of seconds into milliseconds. */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000
  const parts = [...trimmed.matchAll(/(\d+)(ms|s|m|h|d)/g)]
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== trimmed) return undefined
  return parts.reduce((total, [, n, unit]) => total + Number(n) * (DURATION_UNITS[unit as string] ?? 0), 0)
}

/** `https://app.example/` as the origin `https://app.example`; undefined for anything that is not one. */
function parseOrigin(text: string): string | undefined {
  try {
    const url = new URL(text)
    return url.origin !== 'null' && url.origin === text.replace(/\/$/, '') ? url.origin : undefined
  } catch {
    return undefined
  }
}

function parseText(parse: Parse, text: string): { value: unknown } | { why: string } {
  switch (parse) {
    case 'string':
      return { value: text }
    case 'url':
      return URL.canParse(text) ? { value: text } : { why: 'is not a valid URL' }
    case 'int':
      return /^\d+$/.test(text) ? { value: Number(text) } : { why: `expected a whole number, got "${text}"` }
    case 'bool': {
      const word = text.toLowerCase()
      if (['true', '1', 'yes', 'on'].includes(word)) return { value: true }
      if (['false', '0', 'no', 'off'].includes(word)) return { value: false }
      return { why: `expected true or false, got "${text}"` }
    }
    case 'duration': {
      const ms = parseDuration(text)
      return ms === undefined ? { why: `expected a duration such as 30m, 12h or 7d, got "${text}"` } : { value: ms }
    }
    case 'nodes': {
      const nodes = text
        .split(',')
        .map((node) => node.trim())
        .filter(Boolean)
      for (const node of nodes) {
        const url = node.includes('://') ? node : `redis://${node}`
        if (!/^rediss?:\/\//.test(url) || !URL.canParse(url) || !new URL(url).port) {
          return { why: `"${redactNode(node)}" is not a node such as 10.0.0.5:6379 or rediss://user:pass@host:6380` }
        }
      }
      return { value: nodes }
    }
    case 'origins': {
      const origins: string[] = []
      for (const item of text.split(',').map((o) => o.trim())) {
        if (!item) continue
        const origin = parseOrigin(item)
        if (!origin) return { why: `"${item}" is not an origin such as https://app.example.com` }
        origins.push(origin)
      }
      return { value: origins }
    }
  }
}

/** Every setting that reads a variable, with its options: for the loader, and for generated docs. */
export function configVariables(): (EnvOptions & { key: string; schema: TSchema })[] {
  return Object.entries(ConfigSchema.properties)
    .filter(([, schema]) => typeof (schema as Partial<EnvOptions>).env === 'string')
    .map(([key, schema]) => ({ ...(schema as unknown as EnvOptions), key, schema }))
}

/** Parses the environment into a frozen Config, throwing a ConfigError that names the variable. */
export function loadConfig(env: Env): Config {
  const fail = (name: string, why: string): never => {
    throw new ConfigError(`${name}: ${why}`)
  }
  const raw = (name: string) => {
    const value = env[name]?.trim()
    return value === undefined || value === '' ? undefined : value
  }
  const production = (raw('NODE_ENV') ?? 'development') === 'production'
  const values: Record<string, unknown> = {}
  for (const variable of configVariables()) {
    let text = raw(variable.env) ?? variable.default
    if (variable.key === 'logLevel') text = (text ?? (production ? 'info' : 'debug')).toLowerCase()
    // A fresh machine runs with `bun run start` alone; a production schema changes only when asked.
    if (variable.key === 'migrateOnBoot') text ??= production ? 'false' : 'true'
    // Only production has a load balancer to wait for; elsewhere a SIGTERM or Ctrl-C stops at once.
    if (variable.key === 'shutdownDelayMs') text ??= production ? '5s' : '0s'
    // One partition keeps the layout of a single Redis; a cluster spreads users over sixteen.
    if (variable.key === 'redisPartitions') text ??= raw('REDIS_CLUSTER_NODES') ? '16' : '1'
    if (text === undefined) continue
    const parsed = parseText(variable.parse, text)
    if ('why' in parsed) fail(variable.env, parsed.why)
    const { value } = parsed as { value: unknown }
    if (!Value.Check(variable.schema, value)) fail(variable.env, variable.hint ?? `"${text}" is not valid`)
    values[variable.key] = value
  }

  // No silent localhost in production: a forgotten variable would otherwise point the server at
  // whatever happens to listen on the default port.
  if (production && raw('DATABASE_URL') === undefined) fail('DATABASE_URL', 'is required when NODE_ENV=production')
  if (production && raw('REDIS_URL') === undefined && raw('REDIS_CLUSTER_NODES') === undefined) {
    fail('REDIS_URL', 'is required when NODE_ENV=production (or REDIS_CLUSTER_NODES, for a cluster)')
  }

  const adminPassword = raw('ADMIN_PASSWORD')
  if (production && adminPassword === undefined) fail('ADMIN_PASSWORD', 'is required when NODE_ENV=production')
  const passwordOk =
    adminPassword === undefined ||
    (adminPassword.length >= PASSWORD_MIN_LENGTH && adminPassword.length <= PASSWORD_MAX_LENGTH) ||
    // The development default may be set explicitly, outside production.
    (!production && adminPassword === 'admin')
  if (!passwordOk) fail('ADMIN_PASSWORD', `must be ${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters`)
  if (normalizeUsername(values.adminUsername as string) === undefined)
    fail('ADMIN_USERNAME', `must be ${USERNAME_RULE}`)

  const idle = values.sessionIdleTimeoutMs as number
  if ((values.sessionAbsoluteTimeoutMs as number) < idle) {
    fail('SESSION_ABSOLUTE_TIMEOUT', 'must not be shorter than SESSION_IDLE_TIMEOUT')
  }
  checkRedisTls(values, fail)
  try {
    postgresTlsSettings(values.databaseUrl as string)
  } catch (error) {
    fail('DATABASE_URL', (error as Error).message)
  }
  const delay = values.shutdownDelayMs as number
  if (delay > 0 && delay >= (values.shutdownGraceMs as number)) {
    fail('SHUTDOWN_DELAY', 'must be shorter than SHUTDOWN_GRACE, which it is part of')
  }
  // The __Host- prefix makes browsers refuse the cookie unless it is Secure, host-only and Path=/,
  // so a subdomain or a plain-http page cannot plant or overwrite it.
  const bareCookieName = (values.cookieName as string).replace(/^__Host-/, '')

  const config = {
    ...values,
    production,
    adminPassword: adminPassword ?? 'admin',
    adminPasswordIsDefault: adminPassword === undefined,
    sessionTouchIntervalMs: Math.min(5_000, Math.floor(idle / 10)),
    cookieName: values.cookieSecure ? `__Host-${bareCookieName}` : bareCookieName,
    trustedOrigins: Object.freeze(values.trustedOrigins as string[]),
  }
  if (!Value.Check(ConfigSchema, config)) {
    const first = Value.Errors(ConfigSchema, config).First()
    throw new ConfigError(`configuration: ${first?.path} ${first?.message}`)
  }
  return Object.freeze(config) as Config
}

/**
 * TLS files are only read for a rediss:// connection: set without one, they would leave the
 * operator believing the link is encrypted, so that is refused.
 */
function checkRedisTls(values: Record<string, unknown>, fail: (name: string, why: string) => never): void {
  const cert = values.redisTlsCertFile as string
  const key = values.redisTlsKeyFile as string
  if (Boolean(cert) !== Boolean(key)) {
    fail(cert ? 'REDIS_TLS_KEY_FILE' : 'REDIS_TLS_CERT_FILE', 'REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE go together')
  }
  // The URL that carries the credentials and turns TLS on (as createCluster reads it).
  const nodes = values.redisClusterNodes as string[]
  const fromNode = nodes[0]?.includes('://') ?? false
  const authUrl = fromNode ? (nodes[0] as string) : (values.redisUrl as string)
  const tlsFile = values.redisTlsCaFile ? 'REDIS_TLS_CA_FILE' : cert ? 'REDIS_TLS_CERT_FILE' : undefined
  if (tlsFile && !authUrl.startsWith('rediss://')) {
    fail(tlsFile, `is set, but ${fromNode ? 'the first of REDIS_CLUSTER_NODES' : 'REDIS_URL'} is not a rediss:// URL`)
  }
}

export type LogLevel = (typeof LOG_LEVELS)[number]
