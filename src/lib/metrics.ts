// In-process counters, rendered in the Prometheus text format at GET /metrics.

export interface Metrics {
  increment(name: string, labels?: Record<string, string>, by?: number): void
  render(): string
}

export function createMetrics(help: Record<string, string>): Metrics {
  const counters = new Map<string, number>()
  const key = (name: string, labels: Record<string, string>) => {
    const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`)
    return parts.length > 0 ? `${name}{${parts.join(',')}}` : name
  }
  return {
    increment(name, labels = {}, by = 1) {
      const k = key(name, labels)
      counters.set(k, (counters.get(k) ?? 0) + by)
    },
    render() {
      const lines: string[] = []
      for (const [name, text] of Object.entries(help)) {
        lines.push(`# HELP ${name} ${text}`, `# TYPE ${name} counter`)
        for (const [k, value] of counters) if (k === name || k.startsWith(`${name}{`)) lines.push(`${k} ${value}`)
      }
      return `${lines.join('\n')}\n`
    },
  }
}

export const METRIC_HELP = {
  tessera_auth_denied_total: 'Requests refused by the auth plugin, by reason (unauthenticated = 401, forbidden = 403).',
  tessera_logins_total: 'Login attempts by outcome.',
}

/** The audit consumer's own counters (served by `bun run audit` on AUDIT_METRICS_PORT). */
export const AUDIT_METRIC_HELP = {
  tessera_audit_recorded_total: 'Stream entries recorded in audit_events.',
  tessera_audit_dead_letters_total: 'Stream entries PostgreSQL refused, set aside in audit_dead_letters.',
}
