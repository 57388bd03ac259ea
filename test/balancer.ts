// A small HTTP load balancer for rolling-restart tests, as a real one behaves: it polls each
// backend's /readyz, takes one out after `fall` failed checks in a row (HAProxy's `fall`; one slow
// answer on a loaded machine is not a verdict) and puts it back after one good check, round-robins
// over those in rotation, and never retries (a real one does not resend a POST); an upstream
// failure is answered 502 and recorded.

export interface Balancer {
  readonly url: string
  /** Starts health-checking a backend; it takes traffic once its /readyz answers 200. */
  add(url: string): void
  remove(url: string): void
  /** Whether the health checker currently routes to `url`. */
  isReady(url: string): boolean
  /** When (Date.now()) `url` was last taken out of rotation. */
  outOfRotationSince(url: string): number | undefined
  /** Requests forwarded to each backend, and the upstream failures met. */
  readonly forwarded: Map<string, number>
  readonly failures: string[]
  /** Every change of a backend's readiness, with the reason, for a failing test to print. */
  readonly transitions: string[]
  close(): void
}

interface Backend {
  url: string
  ready: boolean
  checking: boolean
  failedChecks: number
  outSince?: number
}

// Hop-by-hop headers, and those that describe a body fetch() has already decoded and measured.
const NOT_FORWARDED = ['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'content-encoding', 'host']

export function startBalancer({ checkEveryMs = 50, fall = 2, checkTimeoutMs = 2_000 } = {}): Balancer {
  const backends = new Map<string, Backend>()
  const forwarded = new Map<string, number>()
  const failures: string[] = []
  const transitions: string[] = []
  const started = performance.now()
  let turn = 0
  const checked = (backend: Backend, good: boolean, why: string) => {
    backend.failedChecks = good ? 0 : backend.failedChecks + 1
    const ready = good || (backend.ready && backend.failedChecks < fall)
    if (backend.ready && !ready) backend.outSince = Date.now()
    if (backend.ready !== ready) {
      transitions.push(
        `${Math.round(performance.now() - started)} ms ${backend.url} ${ready ? 'ready' : `unready: ${why}`}`,
      )
    }
    backend.ready = ready
  }

  const check = async (backend: Backend) => {
    if (backend.checking) return
    backend.checking = true
    try {
      const response = await fetch(`${backend.url}/readyz`, { signal: AbortSignal.timeout(checkTimeoutMs) })
      checked(backend, response.status === 200, `${response.status} ${await response.text()}`)
    } catch (error) {
      checked(backend, false, (error as Error).message)
    } finally {
      backend.checking = false
    }
  }
  const checker = setInterval(() => {
    for (const backend of backends.values()) void check(backend)
  }, checkEveryMs)

  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    async fetch(request) {
      const ready = [...backends.values()].filter((backend) => backend.ready)
      const backend = ready[turn++ % Math.max(ready.length, 1)]
      if (!backend) return new Response('no ready backend', { status: 503 })
      const url = new URL(request.url)
      const headers = new Headers(request.headers)
      for (const name of NOT_FORWARDED) headers.delete(name)
      const body = request.method === 'GET' || request.method === 'HEAD' ? undefined : await request.arrayBuffer()
      forwarded.set(backend.url, (forwarded.get(backend.url) ?? 0) + 1)
      try {
        const upstream = await fetch(`${backend.url}${url.pathname}${url.search}`, {
          method: request.method,
          headers,
          body,
          redirect: 'manual',
        })
        const answer = await upstream.arrayBuffer()
        const out = new Headers(upstream.headers)
        for (const name of NOT_FORWARDED) out.delete(name)
        return new Response(answer, { status: upstream.status, headers: out })
      } catch (error) {
        const failure = `${request.method} ${url.pathname} via ${backend.url}: ${(error as Error).message}`
        failures.push(failure)
        return new Response(failure, { status: 502 })
      }
    },
  })

  return {
    url: `http://127.0.0.1:${server.port}`,
    add(url) {
      const backend = { url, ready: false, checking: false, failedChecks: 0 }
      backends.set(url, backend)
      void check(backend)
    },
    remove(url) {
      backends.delete(url)
    },
    isReady: (url) => backends.get(url)?.ready ?? false,
    outOfRotationSince: (url) => backends.get(url)?.outSince,
    forwarded,
    failures,
    transitions,
    close() {
      clearInterval(checker)
      server.stop(true)
    },
  }
}
