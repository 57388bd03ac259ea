// A real nginx in front of a tiny upstream, asking Tessera's /auth/verify through auth_request:
// no cookie is refused, a valid one reaches the upstream with the identity headers, a missing
// permission is 403, and after logout the same cookie is refused. nginx comes from Debian's
// packages (`bun run test` installs it when missing) and is stopped by the PID this file started.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Server, Subprocess } from 'bun'
import { findTool } from '../scripts/system-tools'
import { ADMIN_PASSWORD, call, createTestEnv, loginAs, registerUser, type TestEnv } from './helpers'

const PASSWORD = 'correct horse battery'
const NGINX = findTool('nginx')

let env: TestEnv
let upstream: Server<undefined>
let nginx: Subprocess | undefined
let nginxLog = ''
let dir: string
let base: string
let alice: string

/** A port in 16500-16549 that nothing listens on right now. */
function pickPort(): number {
  const start = Math.floor(Math.random() * 50)
  for (let i = 0; i < 50; i++) {
    const port = 16500 + ((start + i) % 50)
    try {
      Bun.listen({ hostname: '127.0.0.1', port, socket: { data() {} } }).stop(true)
      return port
    } catch {}
  }
  throw new Error('no free port in 16500-16549')
}

function nginxConfig(port: number, tesseraPort: number, upstreamPort: number): string {
  // Identity headers from Tessera's answer, forwarded upstream; whatever the client sent under
  // those names is overwritten, never passed through.
  const identity = `
      auth_request_set $tessera_user_id $upstream_http_x_user_id;
      auth_request_set $tessera_user_name $upstream_http_x_user_name;
      auth_request_set $tessera_user_permissions $upstream_http_x_user_permissions;
      proxy_set_header X-User-Id $tessera_user_id;
      proxy_set_header X-User-Name $tessera_user_name;
      proxy_set_header X-User-Permissions $tessera_user_permissions;
      proxy_pass http://127.0.0.1:${upstreamPort};`
  const verify = (query: string) => `
      internal;
      proxy_pass http://127.0.0.1:${tesseraPort}/auth/verify${query};
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";`
  return `
daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log stderr warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port};
    location = /_auth {${verify('')}
    }
    location = /_auth_reader {${verify('?permission=user:read')}
    }
    location /reports/ {
      auth_request /_auth_reader;${identity}
    }
    location / {
      auth_request /_auth;${identity}
    }
  }
}
`
}

async function waitForNginx(url: string): Promise<void> {
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    if (nginx?.exitCode !== null) throw new Error(`nginx exited: ${nginxLog}`)
    try {
      await fetch(url)
      return
    } catch {
      await Bun.sleep(50)
    }
  }
  throw new Error(`nginx did not answer on ${url}: ${nginxLog}`)
}

beforeAll(async () => {
  if (!NGINX) {
    // test/preload.ts installs it before any test file runs; this is a failure, never a skip.
    throw new Error('nginx is not installed: run `bun scripts/system-tools.ts test` to see why')
  }
  env = await createTestEnv('nginx')
  await registerUser(env, 'alice', PASSWORD)
  const admin = await loginAs(env, 'admin', ADMIN_PASSWORD)
  const body = { username: 'alice', permission: 'audit:read' }
  expect((await call(env.app, 'POST', '/user/assign', { cookie: admin, body })).status).toBe(200)
  alice = await loginAs(env, 'alice', PASSWORD)
  env.app.listen({ hostname: '127.0.0.1', port: 0 })
  const tesseraPort = env.app.server?.port
  if (!tesseraPort) throw new Error('Tessera did not listen')

  upstream = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    fetch: (request) =>
      Response.json({
        method: request.method,
        path: new URL(request.url).pathname,
        userId: request.headers.get('x-user-id'),
        userName: request.headers.get('x-user-name'),
        permissions: request.headers.get('x-user-permissions'),
      }),
  })

  dir = mkdtempSync(join(tmpdir(), 'tessera-nginx-'))
  const port = pickPort()
  writeFileSync(join(dir, 'nginx.conf'), nginxConfig(port, tesseraPort, Number(upstream.port)))
  const proc = Bun.spawn([NGINX, '-e', 'stderr', '-p', dir, '-c', join(dir, 'nginx.conf')], {
    stdout: 'ignore',
    stderr: 'pipe',
  })
  nginx = proc
  const reader = proc.stderr.getReader()
  const decoder = new TextDecoder()
  const drain = async (): Promise<void> => {
    const { done, value } = await reader.read()
    if (done) return
    nginxLog += decoder.decode(value)
    return drain()
  }
  drain().catch(() => {})
  base = `http://127.0.0.1:${port}`
  await waitForNginx(base)
})

afterAll(async () => {
  if (nginx && nginx.exitCode === null) {
    nginx.kill('SIGTERM')
    await nginx.exited
  }
  upstream?.stop(true)
  await env?.app.stop()
  if (dir) rmSync(dir, { recursive: true, force: true })
  await env?.close()
})

interface Echo {
  method: string
  path: string
  userId: string | null
  userName: string | null
  permissions: string | null
}

const viaNginx = (path: string, init: RequestInit = {}) => fetch(`${base}${path}`, init)

describe('nginx auth_request in front of an upstream', () => {
  test('no cookie: refused with 401, the upstream never sees it', async () => {
    const response = await viaNginx('/app/page')
    expect(response.status).toBe(401)
    expect(await response.text()).not.toContain('"path"')
  })

  test('a valid cookie reaches the upstream with the identity headers', async () => {
    const response = await viaNginx('/app/page', { headers: { cookie: alice } })
    expect(response.status).toBe(200)
    const echo = (await response.json()) as Echo
    expect(echo).toMatchObject({ path: '/app/page', userName: 'alice', permissions: 'audit:read' })
    expect(Number(echo.userId)).toBeGreaterThan(0)
  })

  test('identity headers sent by the client are replaced, not trusted', async () => {
    const response = await viaNginx('/app/page', {
      headers: { cookie: alice, 'x-user-name': 'admin', 'x-user-permissions': 'superuser' },
    })
    expect(((await response.json()) as Echo).userName).toBe('alice')
    const anonymous = await viaNginx('/app/page', { headers: { 'x-user-name': 'admin', 'x-user-id': '1' } })
    expect(anonymous.status).toBe(401)
  })

  test('a user lacking the required permission gets 403; one holding it passes', async () => {
    expect((await viaNginx('/reports/q1', { headers: { cookie: alice } })).status).toBe(403)
    const admin = await loginAs(env, 'admin', ADMIN_PASSWORD)
    const response = await viaNginx('/reports/q1', { headers: { cookie: admin } })
    expect(response.status).toBe(200)
    expect(((await response.json()) as Echo).userName).toBe('admin')
  })

  // nginx sends the subrequest as GET with the original headers (Origin included); gateways that
  // keep the method (Envoy) are covered in forward-auth.test.ts.
  test('a cross-origin form POST is judged by the session alone', async () => {
    const response = await viaNginx('/app/form', {
      method: 'POST',
      headers: {
        cookie: alice,
        origin: 'https://elsewhere.example',
        'sec-fetch-site': 'cross-site',
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'a=b',
    })
    expect(response.status).toBe(200)
    expect((await response.json()) as Echo).toMatchObject({ method: 'POST', userName: 'alice' })
  })

  test('after logout the same cookie is refused by nginx', async () => {
    const cookie = await loginAs(env, 'alice', PASSWORD)
    expect((await viaNginx('/app/page', { headers: { cookie } })).status).toBe(200)
    expect((await call(env.app, 'POST', '/user/logout', { cookie })).status).toBe(200)
    expect((await viaNginx('/app/page', { headers: { cookie } })).status).toBe(401)
  })
})
