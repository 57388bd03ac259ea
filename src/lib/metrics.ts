// Prometheus metrics through prom-client. Each app gets a registry of its own, so two apps in one
// process (the tests, the benchmarks) never share a series; only a real server adds the process
// metrics (CPU, memory, event loop, GC), which are global to the process anyway.

import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'

/** Seconds: from a cached lookup (well under a millisecond) to an argon2 login (a quarter second). */
const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

function registry(processMetrics: boolean): Registry {
  const registry = new Registry()
  if (processMetrics) collectDefaultMetrics({ register: registry })
  return registry
}

/** The series of an API instance (GET /metrics). */
export function createMetrics(options: { processMetrics?: boolean } = {}) {
  const register = registry(options.processMetrics ?? false)
  const registers = [register]
  let cacheSize = () => 0
  return {
    register,
    requestDuration: new Histogram({
      name: 'tessera_http_request_duration_seconds',
      help: 'Time from a request reaching the app to its answer, by method, route (as declared; "unmatched" for none) and status.',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: DURATION_BUCKETS,
      registers,
    }),
    logins: new Counter({
      name: 'tessera_logins_total',
      help: 'Login attempts by outcome (succeeded, failed, rate_limited).',
      labelNames: ['outcome'] as const,
      registers,
    }),
    authDenied: new Counter({
      name: 'tessera_auth_denied_total',
      help: 'Requests refused for want of a session (unauthenticated), a permission (forbidden) or a recent password (reauth_required).',
      labelNames: ['reason'] as const,
      registers,
    }),
    sessionLookups: new Counter({
      name: 'tessera_session_lookups_total',
      help: 'Session lookups of presented cookies, by where they were answered (cache, redis) and outcome (valid, invalid).',
      labelNames: ['source', 'outcome'] as const,
      registers,
    }),
    cacheHits: new Counter({
      name: 'tessera_session_cache_hits_total',
      help: 'Lookups the local session cache answered.',
      registers,
    }),
    cacheMisses: new Counter({
      name: 'tessera_session_cache_misses_total',
      help: 'Lookups that could use the local session cache but had to go to Redis.',
      registers,
    }),
    cacheEntries: new Gauge({
      name: 'tessera_session_cache_entries',
      help: 'Sessions held in the local cache.',
      registers,
      collect() {
        this.set(cacheSize())
      },
    }),
    /** Counts the given cache's size at every scrape. */
    watchCache(cache: { readonly size: number }) {
      cacheSize = () => cache.size
    },
    tailerLag: new Gauge({
      name: 'tessera_event_tailer_lag_seconds',
      help: "How far the event tailer is behind its stream's head: the age of the last event it applied when it applied it, 0 once it has caught up.",
      labelNames: ['partition'] as const,
      registers,
    }),
    tailerReconnects: new Counter({
      name: 'tessera_event_tailer_reconnects_total',
      help: 'Times the event tailer lost its stream connection and opened another.',
      labelNames: ['partition'] as const,
      registers,
    }),
    outboxBacklog: new Gauge({
      name: 'tessera_outbox_backlog',
      help: 'Outbox rows committed in PostgreSQL but not yet applied to Redis, as of the last poll (rows set aside excluded).',
      registers,
    }),
    dependencyErrors: dependencyErrors(registers),
  }
}

export type Metrics = ReturnType<typeof createMetrics>

function dependencyErrors(registers: Registry[]) {
  return new Counter({
    name: 'tessera_dependency_errors_total',
    help: 'Operations that failed because Redis or PostgreSQL could not be reached (dependency).',
    labelNames: ['dependency'] as const,
    registers,
  })
}

/**
 * The audit consumer's series (served by `tessera audit` on AUDIT_METRICS_PORT). Lag and pending
 * entries are read from the consumer group at scrape time, through `groupState`.
 */
export function createAuditMetrics(
  options: { processMetrics?: boolean; groupState?: () => Promise<{ lag: number; pending: number }> } = {},
) {
  const register = registry(options.processMetrics ?? false)
  const registers = [register]
  const { groupState } = options
  let state: Promise<{ lag: number; pending: number } | undefined> | undefined
  // One XINFO round per scrape, shared by both gauges; a failure leaves the last values in place.
  const read = () => {
    state ??= (groupState?.() ?? Promise.resolve(undefined))
      .catch(() => undefined)
      .finally(() => {
        state = undefined
      })
    return state
  }
  return {
    register,
    recorded: new Counter({
      name: 'tessera_audit_recorded_total',
      help: 'Stream entries recorded in audit_events.',
      registers,
    }),
    deadLetters: new Counter({
      name: 'tessera_audit_dead_letters_total',
      help: 'Stream entries PostgreSQL refused, set aside in audit_dead_letters.',
      registers,
    }),
    lag: new Gauge({
      name: 'tessera_audit_lag_entries',
      help: 'Stream entries not yet delivered to the audit consumer group, over every partition.',
      registers,
      async collect() {
        const now = await read()
        if (now) this.set(now.lag)
      },
    }),
    pending: new Gauge({
      name: 'tessera_audit_pending_entries',
      help: 'Entries delivered to the audit consumer group but not yet recorded and acknowledged.',
      registers,
      async collect() {
        const now = await read()
        if (now) this.set(now.pending)
      },
    }),
    dependencyErrors: dependencyErrors(registers),
  }
}

export type AuditMetrics = ReturnType<typeof createAuditMetrics>
