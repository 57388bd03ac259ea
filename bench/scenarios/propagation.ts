// propagation: a session is used on instance B (so B may cache it), logged out through instance A,
// and B is polled as fast as one client can until it answers 401. A and B are separate processes
// on the same Redis and PostgreSQL.

import type { AppContext } from '../../src/context'
import { cookieValue } from '../../src/store'
import { http } from '../../test/processes'
import { machineCpu, percentile, stealShare } from '../lib/measure'
import type { Server } from '../lib/servers'
import { createBenchSession, userAgent } from './memory'

export async function measurePropagation(
  ctx: AppContext,
  a: Server,
  b: Server,
  user: { id: number; username: string },
  trials: number,
) {
  const latencies: number[] = []
  let failures = 0
  let staleAnswers = 0
  const status = async (server: Server, method: string, path: string, cookie: string) => {
    const response = await http(server.url, method, path, { cookie })
    await response.arrayBuffer()
    return response.status
  }
  const cpuBefore = machineCpu()
  for (let trial = 0; trial < trials; trial++) {
    // Sessions are made with the real createSession, so that the trials do not wait on argon2.
    const created = await createBenchSession(ctx, user, userAgent(trial % 2000), '127.0.0.1')
    const cookie = `sid=${cookieValue(created.cookie, ctx.store.partitions)}`
    if ((await status(b, 'GET', '/user/me', cookie)) !== 200) {
      failures++
      continue
    }
    const sent = performance.now()
    if ((await status(a, 'POST', '/user/logout', cookie)) !== 200) {
      failures++
      continue
    }
    const deadline = performance.now() + 2_000
    let code = 0
    while (code !== 401 && performance.now() < deadline) {
      code = await status(b, 'GET', '/user/me', cookie)
      if (code === 200) staleAnswers++
    }
    if (code === 401) latencies.push(performance.now() - sent)
    else failures++
  }
  return {
    trials,
    failures,
    /** From sending the logout to A until B's first 401. */
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: percentile(latencies, 100),
    /** Answers 200 from B after A had answered the logout: ideally none. */
    staleAnswers,
    stealShare: stealShare(cpuBefore),
  }
}

export type Propagation = Awaited<ReturnType<typeof measurePropagation>>
