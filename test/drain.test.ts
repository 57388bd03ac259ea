// The drain on SIGTERM, with real processes: /readyz answers 503 `draining` within 100 ms while
// requests are still served for SHUTDOWN_DELAY; then new connections are refused, a request in
// flight still gets its answer, one that outlasts SHUTDOWN_GRACE is cut, and the process exits 0
// with one JSON log line per phase. A second signal exits at once.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import Redis from 'ioredis'
import { ADMIN_PASSWORD, createTestDatabase, deleteKeys, REDIS_URL } from './helpers'
import { type ServerProcess, sigtermUntilUnready, spawnServer, waitFor } from './processes'

const prefix = `test:drain:${crypto.randomUUID().slice(0, 8)}:`
let databaseUrl: string
let dropDatabase: () => Promise<void>
const started: ServerProcess[] = []

beforeAll(async () => {
  const db = await createTestDatabase('drain')
  databaseUrl = db.url
  dropDatabase = db.drop
})

afterAll(async () => {
  await Promise.all(started.map((server) => server.stop()))
  const redis = new Redis(REDIS_URL)
  await deleteKeys(redis, prefix)
  await redis.quit()
  await dropDatabase?.()
})

/** An instance logging at info, so the drain's lines can be read; resolves once /readyz answers 200. */
async function readyServer(vars: Record<string, string>): Promise<ServerProcess> {
  const server = spawnServer({
    DATABASE_URL: databaseUrl,
    REDIS_URL,
    REDIS_KEY_PREFIX: prefix,
    LOG_LEVEL: 'info',
    ...vars,
  })
  started.push(server)
  await waitFor(async () => (await fetch(`${server.url}/readyz`)).ok, 20_000, `${server.url}/readyz`)
  return server
}

interface PartialRequest {
  /** Sends the rest of the body; resolves with the answer's status line, or rejects if the connection closes first. */
  finish(): Promise<string>
  /** Resolves when the server closes the connection. */
  closed: Promise<void>
}

/**
 * A login whose body is only half sent: the server has begun the request and waits for the rest,
 * so it stays in flight for as long as the test likes.
 */
async function halfSentLogin(port: number): Promise<PartialRequest> {
  const body = JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD })
  const head = `POST /user/login HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`
  let received = ''
  let onData = () => {}
  let markClosed = () => {}
  const closed = new Promise<void>((resolve) => {
    markClosed = resolve
  })
  const socket = await Bun.connect({
    hostname: '127.0.0.1',
    port,
    socket: {
      data(_socket, chunk) {
        received += Buffer.from(chunk).toString('latin1')
        onData()
      },
      close: () => markClosed(),
      error: () => markClosed(),
    },
  })
  socket.write(head + body.slice(0, 10))
  return {
    closed,
    finish() {
      socket.write(body.slice(10))
      return new Promise<string>((resolve, reject) => {
        onData = () => {
          if (received.includes('\r\n')) resolve(received.slice(0, received.indexOf('\r\n')))
        }
        closed.then(() => reject(new Error(`connection closed before an answer: ${JSON.stringify(received)}`)))
      })
    },
  }
}

/** The JSON log lines a process wrote, as objects. */
function logLines(server: ServerProcess): { message: string; level: string; [field: string]: unknown }[] {
  return server
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line))
}

describe('SIGTERM drains the instance', () => {
  test('readyz turns 503 at once, requests are served through the delay, the one in flight is answered', async () => {
    const server = await readyServer({ SHUTDOWN_DELAY: '700ms', SHUTDOWN_GRACE: '5s' })
    const inFlight = await halfSentLogin(server.port)
    await Bun.sleep(100)

    const { ms, status, retryAfter, body } = await sigtermUntilUnready(server)
    console.log(`SIGTERM to /readyz 503: ${ms.toFixed(1)} ms`)
    expect(status).toBe(503)
    expect(ms).toBeLessThan(100)
    expect(retryAfter).toBe('2')
    expect(JSON.parse(body).error.code).toBe('draining')

    // Still serving during the delay, and asking clients to reconnect elsewhere.
    const during = await fetch(`${server.url}/healthz`)
    expect(during.status).toBe(200)
    expect(during.headers.get('connection')).toBe('close')
    const login = await fetch(`${server.url}/user/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
    })
    expect(login.status).toBe(200)

    // Past the delay no new connection is taken, but the request in flight still gets its answer.
    await waitFor(
      async () => logLines(server).some((l) => l.message === 'no longer accepting connections'),
      5_000,
      'listener closed',
    )
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow()
    expect(await inFlight.finish()).toBe('HTTP/1.1 200 OK')
    await inFlight.closed

    expect(await server.proc.exited).toBe(0)
    const phases = logLines(server).filter((l) => l.message !== 'superuser seeded' && l.message !== 'tessera listening')
    expect(phases.map((l) => l.message)).toEqual([
      'draining: /readyz answers 503, requests are still served',
      'no longer accepting connections',
      'in-flight requests finished',
      'stopped',
    ])
    // The half-sent login, and perhaps the poll that saw the 503.
    expect(phases[0]).toMatchObject({ reason: 'SIGTERM', delayMs: 700, graceMs: 5000 })
    expect(phases[0]?.inFlight).toBeGreaterThanOrEqual(1)
    expect(phases[1]).toMatchObject({ inFlight: 1 })
  }, 30_000)

  test('a request still running when SHUTDOWN_GRACE ends is cut, and the process exits in time', async () => {
    const server = await readyServer({ SHUTDOWN_DELAY: '0s', SHUTDOWN_GRACE: '1s' })
    const inFlight = await halfSentLogin(server.port)
    await Bun.sleep(100)
    const signalledAt = performance.now()
    server.proc.kill('SIGTERM')
    await inFlight.closed
    expect(await server.proc.exited).toBe(0)
    const elapsed = performance.now() - signalledAt
    expect(elapsed).toBeGreaterThan(900)
    expect(elapsed).toBeLessThan(4_000)
    const cut = logLines(server).find((l) => l.message === 'SHUTDOWN_GRACE elapsed: closing the connections left')
    expect(cut).toMatchObject({ level: 'warn', inFlight: 1 })
    expect(logLines(server).at(-1)?.message).toBe('stopped')
  }, 30_000)

  test('a second signal exits at once', async () => {
    const server = await readyServer({ SHUTDOWN_DELAY: '10s', SHUTDOWN_GRACE: '20s' })
    server.proc.kill('SIGTERM')
    await waitFor(async () => (await fetch(`${server.url}/readyz`)).status === 503, 5_000, 'draining')
    const signalledAt = performance.now()
    server.proc.kill('SIGINT')
    expect(await server.proc.exited).toBe(1)
    expect(performance.now() - signalledAt).toBeLessThan(1_000)
    expect(logLines(server).at(-1)).toMatchObject({
      level: 'warn',
      message: 'second signal: exiting now',
      signal: 'SIGINT',
    })
  }, 30_000)
})
