// Configuration is parsed once and fails loudly, naming the variable (issue 2 point 2). Pure
// function tests: this file touches neither Redis nor PostgreSQL, so it needs no test env.

import { describe, expect, test } from 'bun:test'
import { ConfigError, loadConfig, parseDuration } from '../src/config'

const base = { NODE_ENV: 'test', ADMIN_PASSWORD: 'a-long-enough-password', LOG_LEVEL: 'silent' }
/** What production requires besides ADMIN_PASSWORD: where PostgreSQL and Redis are. */
const production = {
  NODE_ENV: 'production',
  DATABASE_URL: 'postgres://tessera@db.internal:5432/tessera',
  REDIS_URL: 'redis://cache.internal:6379/0',
}

function failure(env: Record<string, string>): ConfigError {
  try {
    loadConfig({ ...base, ...env })
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError)
    return error as ConfigError
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`)
}

describe('bad values stop the boot with a ConfigError naming the variable', () => {
  const cases: [Record<string, string>, string][] = [
    [{ PORT: 'abc' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ PORT: '-1' }, 'PORT'],
    [{ SESSION_IDLE_TIMEOUT: 'soon' }, 'SESSION_IDLE_TIMEOUT'],
    [{ SESSION_IDLE_TIMEOUT: '30 minutes' }, 'SESSION_IDLE_TIMEOUT'],
    [{ SESSION_ABSOLUTE_TIMEOUT: '1h', SESSION_IDLE_TIMEOUT: '2h' }, 'SESSION_ABSOLUTE_TIMEOUT'],
    [{ COOKIE_SECURE: 'maybe' }, 'COOKIE_SECURE'],
    [{ ...production, ADMIN_PASSWORD: '' }, 'ADMIN_PASSWORD'],
    [{ ...production, ADMIN_PASSWORD: 'admin' }, 'ADMIN_PASSWORD'],
    [{ ...production, DATABASE_URL: '' }, 'DATABASE_URL'],
    [{ ...production, REDIS_URL: ' ' }, 'REDIS_URL'],
    [{ MIGRATE_ON_BOOT: 'sometimes' }, 'MIGRATE_ON_BOOT'],
    [{ TRUSTED_ORIGINS: 'not-a-url' }, 'TRUSTED_ORIGINS'],
    [{ TRUSTED_ORIGINS: 'https://ok.example,https://with.path/x' }, 'TRUSTED_ORIGINS'],
    [{ DATABASE_URL: 'mysql://localhost/x' }, 'DATABASE_URL'],
    [{ REDIS_URL: 'nonsense' }, 'REDIS_URL'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ COOKIE_NAME: 'has space' }, 'COOKIE_NAME'],
    [{ REDIS_KEY_PREFIX: 'bad prefix*' }, 'REDIS_KEY_PREFIX'],
    [{ ADMIN_USERNAME: 'x' }, 'ADMIN_USERNAME'],
    [{ SHUTDOWN_GRACE: 'later' }, 'SHUTDOWN_GRACE'],
    [{ REDIS_TLS_CA_FILE: '/etc/ssl/ca.pem' }, 'REDIS_TLS_CA_FILE'],
    [{ REDIS_URL: 'rediss://h:6380', REDIS_TLS_CERT_FILE: '/c.pem' }, 'REDIS_TLS_KEY_FILE'],
    [{ REDIS_URL: 'rediss://h:6380', REDIS_TLS_KEY_FILE: '/k.pem' }, 'REDIS_TLS_CERT_FILE'],
    [{ REDIS_CLUSTER_NODES: 'redis://:pw@h:7000', REDIS_TLS_CA_FILE: '/ca.pem' }, 'REDIS_TLS_CA_FILE'],
    [{ DATABASE_URL: 'postgres://h/db?sslmode=verify' }, 'DATABASE_URL'],
    [{ DATABASE_URL: 'postgres://h/db?sslmode=require&sslcrl=/crl.pem' }, 'DATABASE_URL'],
    [{ SHUTDOWN_DELAY: '10s', SHUTDOWN_GRACE: '10s' }, 'SHUTDOWN_DELAY'],
    [{ ...production, SHUTDOWN_GRACE: '3s' }, 'SHUTDOWN_DELAY'],
  ]
  for (const [env, variable] of cases) {
    test(`${JSON.stringify(env)} names ${variable}`, () => {
      const error = failure(env)
      expect(error.message).toStartWith(`${variable}:`)
      expect(error.message).not.toContain('\n')
    })
  }

  test('production without ADMIN_PASSWORD at all is refused', () => {
    const { ADMIN_PASSWORD: _, ...withoutPassword } = base
    expect(() => loadConfig({ ...withoutPassword, ...production })).toThrow(/^ADMIN_PASSWORD:/)
  })

  test('production without DATABASE_URL or REDIS_URL is refused: no silent localhost', () => {
    const { DATABASE_URL: _, ...withoutDatabase } = production
    expect(() => loadConfig({ ...base, ...withoutDatabase })).toThrow(
      /^DATABASE_URL: is required when NODE_ENV=production$/,
    )
    const { REDIS_URL: __, ...withoutRedis } = production
    expect(() => loadConfig({ ...base, ...withoutRedis })).toThrow(/^REDIS_URL: is required when NODE_ENV=production/)
  })
})

describe('production', () => {
  test('REDIS_CLUSTER_NODES stands in for REDIS_URL', () => {
    const { REDIS_URL: _, ...withoutRedis } = production
    const config = loadConfig({ ...base, ...withoutRedis, REDIS_CLUSTER_NODES: '10.0.0.5:6379,10.0.0.6:6379' })
    expect(config.redisClusterNodes).toEqual(['10.0.0.5:6379', '10.0.0.6:6379'])
  })

  test('MIGRATE_ON_BOOT is on outside production and off in production unless set', () => {
    expect(loadConfig({}).migrateOnBoot).toBe(true)
    expect(loadConfig({ ...base, MIGRATE_ON_BOOT: 'false' }).migrateOnBoot).toBe(false)
    expect(loadConfig({ ...base, ...production }).migrateOnBoot).toBe(false)
    expect(loadConfig({ ...base, ...production, MIGRATE_ON_BOOT: 'true' }).migrateOnBoot).toBe(true)
  })
})

describe('defaults and good values', () => {
  test('defaults match the documented ones', () => {
    const config = loadConfig({})
    expect(config.port).toBe(3000)
    expect(config.databaseUrl).toBe('postgres://postgres@127.0.0.1:5432/tessera')
    expect(config.redisUrl).toBe('redis://127.0.0.1:6379/0')
    expect(config.redisKeyPrefix).toBe('tessera:')
    expect(config.adminUsername).toBe('admin')
    expect(config.adminPasswordIsDefault).toBe(true)
    expect(config.sessionIdleTimeoutMs).toBe(30 * 60_000)
    expect(config.sessionAbsoluteTimeoutMs).toBe(12 * 3_600_000)
    expect(config.cookieSecure).toBe(true)
    expect(config.cookieName).toBe('__Host-sid')
    expect(config.trustedOrigins).toEqual([])
    expect(Object.isFrozen(config)).toBe(true)
  })

  test('TRUSTED_ORIGINS is a comma-separated list of origins', () => {
    const config = loadConfig({ ...base, TRUSTED_ORIGINS: 'https://app.example, http://localhost:5173/' })
    expect(config.trustedOrigins).toEqual(['https://app.example', 'http://localhost:5173'])
  })

  test('COOKIE_SECURE=false drops the __Host- prefix', () => {
    expect(loadConfig({ ...base, COOKIE_SECURE: 'false' }).cookieName).toBe('sid')
    expect(loadConfig({ ...base, COOKIE_SECURE: 'false', COOKIE_NAME: '__Host-x' }).cookieName).toBe('x')
    expect(loadConfig({ ...base, COOKIE_NAME: 'tessera' }).cookieName).toBe('__Host-tessera')
  })
})

describe('durations', () => {
  test('parse human forms and bare seconds', () => {
    expect(parseDuration('30m')).toBe(30 * 60_000)
    expect(parseDuration('12h')).toBe(12 * 3_600_000)
    expect(parseDuration('1h30m')).toBe(90 * 60_000)
    expect(parseDuration('90')).toBe(90_000)
    expect(parseDuration('90s')).toBe(90_000)
    expect(parseDuration('7d')).toBe(7 * 86_400_000)
    expect(parseDuration('1500ms')).toBe(1500)
  })

  test('reject anything else', () => {
    for (const text of ['soon', '', '1x', 'm30', '1h 30m', '-5m', '1.5h', '30m!']) {
      expect(parseDuration(text)).toBeUndefined()
    }
  })

  test('reach the config', () => {
    const config = loadConfig({ ...base, SESSION_IDLE_TIMEOUT: '1h30m', SESSION_ABSOLUTE_TIMEOUT: '90000' })
    expect(config.sessionIdleTimeoutMs).toBe(90 * 60_000)
    expect(config.sessionAbsoluteTimeoutMs).toBe(90_000_000)
  })
})

describe('shutdown timing', () => {
  test('SHUTDOWN_DELAY waits for a load balancer only in production; SHUTDOWN_GRACE is 10s', () => {
    expect(loadConfig(base)).toMatchObject({ shutdownDelayMs: 0, shutdownGraceMs: 10_000 })
    expect(loadConfig({ ...base, ...production })).toMatchObject({ shutdownDelayMs: 5_000 })
    expect(loadConfig({ ...base, SHUTDOWN_DELAY: '2s', SHUTDOWN_GRACE: '30s' })).toMatchObject({
      shutdownDelayMs: 2_000,
      shutdownGraceMs: 30_000,
    })
    expect(loadConfig({ ...base, SHUTDOWN_GRACE: '0' })).toMatchObject({ shutdownDelayMs: 0, shutdownGraceMs: 0 })
  })
})

describe('credentials and TLS settings', () => {
  test('the TLS files of Redis are accepted with a rediss:// URL or first cluster node', () => {
    const tls = { REDIS_TLS_CA_FILE: '/ca.pem', REDIS_TLS_CERT_FILE: '/c.pem', REDIS_TLS_KEY_FILE: '/k.pem' }
    expect(loadConfig({ ...base, ...tls, REDIS_URL: 'rediss://u:p@h:6380/0' })).toMatchObject({
      redisTlsCaFile: '/ca.pem',
      redisTlsCertFile: '/c.pem',
      redisTlsKeyFile: '/k.pem',
    })
    expect(loadConfig({ ...base, ...tls, REDIS_CLUSTER_NODES: 'rediss://:p@h:7000,h:7001' }).redisTlsCaFile).toBe(
      '/ca.pem',
    )
  })

  test('an error about a cluster node never quotes its password', () => {
    const error = failure({ REDIS_CLUSTER_NODES: 'rediss://user:hunter2@host-without-port' })
    expect(error.message).toStartWith('REDIS_CLUSTER_NODES:')
    expect(error.message).not.toContain('hunter2')
    expect(error.message).toContain('rediss://user:***@host-without-port')
  })

  test("an error about DATABASE_URL's sslmode never quotes the URL", () => {
    const error = failure({ DATABASE_URL: 'postgres://app:hunter2@db/tessera?sslmode=on' })
    expect(error.message).toBe(
      'DATABASE_URL: sslmode=on is not one of disable, allow, prefer, require, verify-ca, verify-full',
    )
  })
})
