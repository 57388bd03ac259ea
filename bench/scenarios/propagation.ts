// propagation: a session is used on instance B (so B may cache it), logged out through instance A,
// and B is polled as fast as one client can until it answers 401. Both are separate processes on
// the same Redis and PostgreSQL.

import type { AppContext } from '../../src/context'
import { createSession } from '../../src/store'
import { machineCpu, stealShare } from '../lib/processes'
import type { RunningServer } from '../lib/servers'
import { percentile } from '../lib/stats'
import { DISTINCT_USER_AGENTS, userAgent } from './memory'

export interface PropagationResult {
  trials: number
  failures: number
  /** From sending the logout to A until B's first 401. */
  p50Ms: number
  p99Ms: number
  maxMs: number
  /** From A's answer to the logout until B's first 401. */
  afterAnswerP50Ms: number
  afterAnswerP99Ms: number
  /** Requests B answered 200 after A had answered the logout (ideally none). */
  staleAnswers: number
  /** Share of CPU time the host stole from this machine during the trials. */
  stealShare: number
}

async function status(url: string, init: RequestInit): Promise<number> {
  const response = await fetch(url, init)
  await response.arrayBuffer()
  return response.status
}

export async function measurePropagation(
  ctx: AppContext,
  a: RunningServer,
  b: RunningServer,
  user: { id: number; username: string },
  trials: number,
): Promise<PropagationResult> {
  const fromSend: number[] = []
  const fromAnswer: number[] = []
  let failures = 0
  let staleAnswers = 0
  const cpuBefore = machineCpu()
  for (let trial = 0; trial < trials; trial++) {
    // Sessions are created directly (the real createSession) so the trials do not wait on argon2.
    const ua = userAgent(trial % DISTINCT_USER_AGENTS)
    const {
      cookie: { token },
    } = await createSession(ctx.store, {
      user: { id: user.id, username: user.username, permissions: [], permissionsVersion: 0 },
      ip: '127.0.0.1',
      userAgent: ua,
      now: Date.now(),
      event: {
        type: 'login_succeeded',
        username: user.username,
        instance: 'bench',
        actorId: user.id,
        subjectId: user.id,
        ip: '127.0.0.1',
        userAgent: ua,
      },
    })
    const headers = { cookie: `sid=${token}` }
    if ((await status(`${b.url}/user/me`, { headers })) !== 200) {
      failures++
      continue
    }
    const sent = performance.now()
    const logout = await status(`${a.url}/user/logout`, { method: 'POST', headers })
    const answered = performance.now()
    if (logout !== 200) {
      failures++
      continue
    }
    const deadline = answered + 2_000
    let seen401 = false
    while (performance.now() < deadline) {
      const code = await status(`${b.url}/user/me`, { headers })
      if (code === 401) {
        seen401 = true
        break
      }
      if (code === 200) staleAnswers++
    }
    const done = performance.now()
    if (!seen401) {
      failures++
      continue
    }
    fromSend.push(done - sent)
    fromAnswer.push(done - answered)
  }
  return {
    trials,
    failures,
    p50Ms: percentile(fromSend, 50),
    p99Ms: percentile(fromSend, 99),
    maxMs: percentile(fromSend, 100),
    afterAnswerP50Ms: percentile(fromAnswer, 50),
    afterAnswerP99Ms: percentile(fromAnswer, 99),
    staleAnswers,
    stealShare: stealShare(cpuBefore, machineCpu()),
  }
}
