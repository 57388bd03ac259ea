// A rolling restart under load with real processes: two instances behind the test's own load
// balancer (test/balancer.ts: /readyz every 50 ms, out after 2 failed checks, no retries), steady GET /user/me traffic and
// bursts of logins; A gets SIGTERM and a new A' takes its place, then the same for B. Every request
// must get its expected answer: no 502, no connection error, no 503.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import Redis from 'ioredis'
import { type Balancer, startBalancer } from './balancer'
import { createTestDatabase, deleteKeys, REDIS_URL } from './helpers'
import { cookieFrom, http, type ServerProcess, sigtermUntilUnready, startServer, waitFor } from './processes'

const prefix = `test:rolling:${crypto.randomUUID().slice(0, 8)}:`
let vars: Record<string, string>
let dropDatabase: () => Promise<void>
let balancer: Balancer
const servers: ServerProcess[] = []

beforeAll(async () => {
  const db = await createTestDatabase('rolling')
  dropDatabase = db.drop
  vars = {
    DATABASE_URL: db.url,
    REDIS_URL,
    REDIS_KEY_PREFIX: prefix,
    // Twenty of the balancer's checks: ample time for it to take the instance out.
    SHUTDOWN_DELAY: '1s',
    SHUTDOWN_GRACE: '10s',
    // The login bursts must not end the sessions the readers hold.
    SESSION_MAX_PER_USER: '10000',
  }
  balancer = startBalancer({ checkEveryMs: 50 })
})

afterAll(async () => {
  balancer?.close()
  await Promise.all(servers.map((server) => server.stop()))
  const redis = new Redis(REDIS_URL)
  await deleteKeys(redis, prefix)
  await redis.quit()
  await dropDatabase?.()
})

async function startInstance(): Promise<ServerProcess> {
  const server = await startServer(vars)
  servers.push(server)
  balancer.add(server.url)
  await waitFor(async () => balancer.isReady(server.url), 10_000, `${server.url} in rotation`)
  return server
}

/** Steady traffic through the balancer until stopped; every unexpected answer is recorded. */
function driveLoad(readers: string[], loginUsers: string[]) {
  let running = true
  const failures: string[] = []
  const counts = { me: 0, login: 0 }
  /** Waits for the whole answer; records it unless it has `status`. Returns its cookie, if any. */
  const expectStatus = async (what: string, request: Promise<Response>, status: number) => {
    try {
      const answer = await request
      const text = await answer.text()
      if (answer.status !== status) failures.push(`${what}: ${answer.status} ${text.slice(0, 200)}`)
      return answer.status === status ? { cookie: answer.headers.getSetCookie()[0]?.split(';')[0] } : undefined
    } catch (error) {
      failures.push(`${what}: ${(error as Error).message}`)
      return undefined
    }
  }
  const reader = async (cookie: string) => {
    while (running) {
      await expectStatus('GET /user/me', http(balancer.url, 'GET', '/user/me', { cookie }), 200)
      counts.me++
    }
  }
  const loginBursts = async () => {
    while (running) {
      await Promise.all(
        loginUsers.map(async (username) => {
          const body = { username, password: `${username}-password` }
          const login = await expectStatus('POST /user/login', http(balancer.url, 'POST', '/user/login', { body }), 200)
          counts.login++
          if (!login?.cookie) return
          await expectStatus(
            'GET /user/me after login',
            http(balancer.url, 'GET', '/user/me', { cookie: login.cookie }),
            200,
          )
          counts.me++
        }),
      )
      await Bun.sleep(200)
    }
  }
  const workers = [...readers.map(reader), loginBursts()]
  return {
    failures,
    counts,
    async stop() {
      running = false
      await Promise.all(workers)
    },
  }
}

describe('a rolling restart of two instances behind a load balancer', () => {
  test('under load, every request gets its expected answer', async () => {
    const a = await startInstance()
    const b = await startInstance()
    const readerNames = ['rita', 'remy', 'rosa', 'ruth']
    const loginNames = ['lars', 'lena', 'lola']
    for (const username of [...readerNames, ...loginNames]) {
      const created = await http(balancer.url, 'POST', '/user', {
        body: { username, password: `${username}-password` },
      })
      expect(created.status).toBe(201)
    }
    const cookies: string[] = []
    for (const username of readerNames) {
      const login = await http(balancer.url, 'POST', '/user/login', {
        body: { username, password: `${username}-password` },
      })
      cookies.push(cookieFrom(login))
    }
    // Two readers per session: six concurrent clients besides the login bursts.
    const load = driveLoad([...cookies, ...cookies.slice(0, 2)], loginNames)
    await Bun.sleep(1_000)

    const replaced: { unreadyMs: number; outOfRotationMs: number; exitedMs: number }[] = []
    for (const old of [a, b]) {
      expect(balancer.isReady(old.url)).toBe(true)
      const { ms: unreadyMs, signalledAtEpochMs } = await sigtermUntilUnready(old)
      const exited = old.proc.exited.then((code) => ({ code, at: Date.now() }))
      await waitFor(async () => !balancer.isReady(old.url), 5_000, `${old.url} out of rotation`)
      const outOfRotationMs = (balancer.outOfRotationSince(old.url) ?? 0) - signalledAtEpochMs
      await startInstance()
      const { code, at } = await exited
      expect(code).toBe(0)
      balancer.remove(old.url)
      const exitedMs = at - signalledAtEpochMs
      replaced.push({ unreadyMs, outOfRotationMs, exitedMs })
    }
    await Bun.sleep(1_000)
    await load.stop()

    const summary = {
      requests: load.counts,
      failures: load.failures.length,
      perInstance: Object.fromEntries(balancer.forwarded),
      replaced: replaced.map((r) => ({
        sigtermToReadyz503Ms: Number(r.unreadyMs.toFixed(1)),
        sigtermToOutOfRotationMs: Math.round(r.outOfRotationMs),
        sigtermToExitMs: Math.round(r.exitedMs),
      })),
    }
    console.log(`rolling restart: ${JSON.stringify(summary)}`)
    if (load.failures.length > 0) {
      console.log(`readiness as the balancer saw it:\n${balancer.transitions.join('\n')}`)
      console.log(`first failures:\n${load.failures.slice(0, 10).join('\n')}`)
      for (const server of servers) {
        console.log(
          `${server.url}: exit ${server.proc.exitCode ?? server.proc.signalCode ?? 'none yet'}\n${server.output()}`,
        )
      }
    }
    expect(load.failures).toEqual([])
    expect(balancer.failures).toEqual([])
    for (const { unreadyMs } of replaced) expect(unreadyMs).toBeLessThan(100)
    // All four instances served, and the load was real.
    expect(balancer.forwarded.size).toBe(4)
    for (const count of balancer.forwarded.values()) expect(count).toBeGreaterThan(50)
    expect(load.counts.login).toBeGreaterThan(20)
  }, 120_000)
})
