// In-process counters, rendered in the Prometheus text format at GET /metrics.

export interface Metrics {
  increment(name: string, labels?: Record<string, string>): void
  render(): string
}

export function createMetrics(help: Record<string, string>): Metrics {
  const counters = new Map<string, number>()
  const key = (name: string, labels: Record<string, string>) => {
    const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`)
    return parts.length > 0 ? `${name}{${parts.join(',')}}` : name
  }
  return {
    increment(name, labels = {}) {
      const k = key(name, labels)
      counters.set(k, (counters.get(k) ?? 0) + 1)
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
