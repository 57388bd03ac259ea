// Two real server processes on one port (issue 17 item 11): the second exits with one line and the
// first keeps serving, unless both ask for sharing with REUSE_PORT=true.

import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test'
import { createTestEnv, REDIS_URL, type TestEnv } from './helpers'
import { type ServerProcess, spawnServer, startServer, waitFor } from './processes'

let env: TestEnv
const started: ServerProcess[] = []

beforeAll(async () => {
  env = await createTestEnv('busy_port')
})
afterEach(async () => {
  await Promise.all(started.splice(0).map((server) => server.stop()))
})
afterAll(async () => {
  await env.close()
})

function vars(extra: Record<string, string> = {}): Record<string, string> {
  return { DATABASE_URL: env.databaseUrl, REDIS_URL, REDIS_KEY_PREFIX: env.prefix, ...extra }
}

const healthy = async (url: string) => (await fetch(`${url}/healthz`)).status === 200

describe('a second instance on a busy port', () => {
  test('exits with 1 and one line naming the port and REUSE_PORT; the first keeps serving', async () => {
    const first = await startServer(vars())
    started.push(first)
    const second = spawnServer(vars({ PORT: String(first.port) }))
    started.push(second)

    const code = await Promise.race([second.proc.exited, Bun.sleep(20_000).then(() => 'still running')])
    expect(code).toBe(1)
    const lines = second.output().trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toStartWith(`tessera: port ${first.port} is in use (127.0.0.1:${first.port})`)
    expect(lines[0]).toContain('REUSE_PORT=true')

    expect(first.proc.exitCode).toBeNull()
    for (let i = 0; i < 5; i++) expect(await healthy(first.url)).toBe(true)
  }, 30_000)

  test('with REUSE_PORT=true on both, both listen: the port still answers once the first stops', async () => {
    const first = await startServer(vars({ REUSE_PORT: 'true' }))
    started.push(first)
    // /healthz cannot tell the two apart (the first would answer it), so wait for the second's log line.
    const second = spawnServer(vars({ PORT: String(first.port), REUSE_PORT: 'true', LOG_LEVEL: 'info' }))
    started.push(second)
    await waitFor(async () => second.output().includes('"tessera listening"'), 20_000, 'the second instance')
    expect(second.proc.exitCode).toBeNull()

    await first.stop()
    expect(await healthy(second.url)).toBe(true)
    expect(second.proc.exitCode).toBeNull()
  }, 30_000)
})
