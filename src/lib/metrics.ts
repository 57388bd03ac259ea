// Prometheus metrics through prom-client. Each app gets a registry of its own, so two apps in one
// process (the tests, the benchmarks) never share a series; only a real server adds the process
// metrics (CPU, memory, event loop, GC), which are global to the process anyway.
//
// What every request touches (the duration histogram, the session lookup counters) is kept in plain
// numbers and handed to prom-client when it is scraped: prom-client's own observe and inc validate
// and hash their labels on every call, which costs more per request than the rest of a cached
// lookup's bookkeeping. Everything else uses prom-client as documented.

import { Counter, collectDefaultMetrics, Gauge, type Histogram, Registry } from 'prom-client'

/** Seconds: from a cached lookup (well under a millisecond) to an argon2 login (a quarter second). */
const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

/** Methods named in the label as they are; any other (a client may send anything) is `other`. */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])

type DurationLabels = 'method' | 'route' | 'status'
interface DurationSeries {
  labels: Record<DurationLabels, string>
  /** Observations per bucket (not cumulative), the last one above every bound. */
  counts: Float64Array
  sum: number
}

/**
 * The request duration histogram, as a metric of its own that a registry scrapes through `get()`
 * (prom-client's metric contract). Series are bounded by construction: routes as declared (or
 * `unmatched`), a fixed set of methods, and statuses.
 */
export class RequestDurations {
  readonly name = 'tessera_http_request_duration_seconds'
  readonly help =
    'Time from a request reaching the app to its answer, by method, route (as declared; "unmatched" for none) and status.'
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  /** By route, status and method. */
  #series = new Map<string, Map<number, Map<string, DurationSeries>>>()

  constructor(registers: Registry[]) {
    // Registered as prom-client registers its own metrics: by name, scraped through get().
    for (const registry of registers) registry.registerMetric(this as unknown as Histogram)
  }

  record(requestMethod: string, route: string, status: number, seconds: number): void {
    const method = METHODS.has(requestMethod) ? requestMethod : 'other'
    // Nested maps keyed by what the request already holds: no key string is built per request.
    let byStatus = this.#series.get(route)
    if (!byStatus) {
      byStatus = new Map()
      this.#series.set(route, byStatus)
    }
    let byMethod = byStatus.get(status)
    if (!byMethod) {
      byMethod = new Map()
      byStatus.set(status, byMethod)
    }
    let series = byMethod.get(method)
    if (!series) {
      const labels = { method, route, status: String(status) }
      series = { labels, counts: new Float64Array(DURATION_BUCKETS.length + 1), sum: 0 }
      byMethod.set(method, series)
    }
    let bucket = 0
    while (bucket < DURATION_BUCKETS.length && seconds > (DURATION_BUCKETS[bucket] as number)) bucket++
    series.counts[bucket] = (series.counts[bucket] as number) + 1
    series.sum += seconds
  }

  *#all(): Iterable<DurationSeries> {
    for (const byStatus of this.#series.values()) {
      for (const byMethod of byStatus.values()) yield* byMethod.values()
    }
  }

  async get() {
    const { name } = this
    const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = []
    for (const { labels, counts, sum } of this.#all()) {
      let cumulative = 0
      for (const [index, bound] of DURATION_BUCKETS.entries()) {
        cumulative += counts[index] as number
        values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: bound }, value: cumulative })
      }
      cumulative += counts[DURATION_BUCKETS.length] as number
      values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: cumulative })
      values.push({ metricName: `${name}_sum`, labels, value: sum })
      values.push({ metricName: `${name}_count`, labels, value: cumulative })
    }
    return { name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }

  reset(): void {
    this.#series = new Map()
  }
}

/** A counter whose increments are plain additions (`counter.of(...labelValues).inc()`), read at scrape. */
export class PlainCounter<L extends string> extends Counter<L> {
  readonly #children = new Map<string, { labels: Partial<Record<L, string>>; value: number }>()
  readonly #labelNames: readonly L[]

  constructor(options: { name: string; help: string; labelNames?: readonly L[]; registers: Registry[] }) {
    super({
      ...options,
      collect() {
        const counter = this as PlainCounter<L>
        counter.reset()
        for (const { labels, value } of counter.#children.values()) counter.inc(labels, value)
      },
    })
    this.#labelNames = options.labelNames ?? []
  }

  /** The series of these label values (in labelNames' order): keep it, and increment it. */
  of(...values: string[]): { inc(): void } {
    const key = values.join('\u0000')
    let child = this.#children.get(key)
    if (!child) {
      const labels = Object.fromEntries(this.#labelNames.map((name, index) => [name, values[index] ?? '']))
      child = { labels: labels as Partial<Record<L, string>>, value: 0 }
      this.#children.set(key, child)
    }
    const series = child
    return {
      inc() {
        series.value++
      },
    }
  }
}

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
    requestDuration: new RequestDurations(registers),
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
    sessionLookups: new PlainCounter({
      name: 'tessera_session_lookups_total',
      help: 'Session lookups of presented cookies, by where they were answered (cache, redis) and outcome (valid, invalid).',
      labelNames: ['source', 'outcome'] as const,
      registers,
    }),
    cacheHits: new PlainCounter({
      name: 'tessera_session_cache_hits_total',
      help: 'Lookups the local session cache answered.',
      registers,
    }),
    cacheMisses: new PlainCounter({
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
