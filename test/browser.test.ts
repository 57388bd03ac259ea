// A real browser on the docs page: headless Chromium (Debian's, driven by playwright-core) opens
// /swagger on a real server, logs in with "Try it out", and calls /user/me with its own HttpOnly
// cookie: 401 before, 200 after, 401 after logout, all under the page's CSP.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Redis from 'ioredis'
import { type BrowserContext, chromium, type Locator, type Page } from 'playwright-core'
import { findTool } from '../scripts/system-tools'
import { ADMIN_PASSWORD, createTestDatabase, deleteKeys, REDIS_URL } from './helpers'
import { type ServerProcess, startServer } from './processes'
import { suffix } from './services'

/** Chromium's switches for a sandbox-less CI box with no network beyond loopback. */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

const prefix = `test:browser:${suffix()}:`
/** The browser profile, and the failure screenshot when there is one. */
const workDir = mkdtempSync(join(tmpdir(), 'tessera-browser-'))
let server: ServerProcess
let dropDatabase: (() => Promise<void>) | undefined
let context: BrowserContext
let failed = false

beforeAll(async () => {
  const executablePath = findTool('chromium')
  if (!executablePath) throw new Error('chromium is missing: `bun run test` installs it (scripts/system-tools.ts)')
  const db = await createTestDatabase('browser')
  dropDatabase = db.drop
  // startServer listens on 127.0.0.1 with COOKIE_SECURE=false: the browser keeps the cookie over http.
  server = await startServer({ DATABASE_URL: db.url, REDIS_URL, REDIS_KEY_PREFIX: prefix })
  context = await chromium.launchPersistentContext(join(workDir, 'profile'), {
    executablePath,
    headless: true,
    args: CHROMIUM_ARGS,
  })
}, 60_000)

afterAll(async () => {
  await context?.close()
  await server?.stop()
  const redis = new Redis(REDIS_URL)
  await deleteKeys(redis, prefix)
  await redis.quit()
  await dropDatabase?.()
  if (!failed) rmSync(workDir, { recursive: true, force: true })
}, 30_000)

/** An operation's block in the page, expanded and in "Try it out" mode. */
async function tryOut(page: Page, operationId: string): Promise<Locator> {
  const block = page.locator(`#operations-auth-${operationId}`)
  const button = block.locator('button.try-out__btn')
  if (!(await button.isVisible())) await block.locator('.opblock-summary').first().click()
  if ((await button.textContent())?.trim() === 'Try it out') await button.click()
  await block.locator('button.execute').waitFor()
  return block
}

/**
 * Presses Execute; returns the status the browser got on the network, after checking that the
 * page's own response pane shows the same one.
 */
async function execute(page: Page, block: Locator, path: string) {
  const [response] = await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname === path && r.request().method() !== 'OPTIONS'),
    block.locator('button.execute').click(),
  ])
  const status = response.status()
  await block
    .locator('.live-responses-table .response-col_status')
    .getByText(String(status), { exact: true })
    .waitFor({ timeout: 10_000 })
  return { status, cookieSent: (await response.request().allHeaders()).cookie ?? '' }
}

describe('Swagger UI in headless Chromium', () => {
  test('/user/me is 401, login with Try it out, 200 with the browser’s own cookie, 401 after logout', async () => {
    const page = await context.newPage()
    // Every CSP violation the page reports, collected from before its first script runs.
    await page.addInitScript(() => {
      const seen: string[] = []
      Object.assign(window, { cspViolations: seen })
      document.addEventListener('securitypolicyviolation', (event) =>
        seen.push(`${event.violatedDirective} ${event.blockedURI}`),
      )
    })
    try {
      await page.goto(`${server.url}/swagger`)
      await page.locator('#operations-auth-getUserMe').waitFor({ timeout: 20_000 })

      const me = await tryOut(page, 'getUserMe')
      expect(await execute(page, me, '/user/me')).toMatchObject({ status: 401 })

      const login = await tryOut(page, 'postUserLogin')
      await login
        .locator('textarea.body-param__text')
        .fill(JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }))
      expect(await execute(page, login, '/user/login')).toMatchObject({ status: 200 })
      const [cookie] = await context.cookies(server.url)
      expect(cookie).toMatchObject({ name: 'sid', httpOnly: true, sameSite: 'Lax' })
      // HttpOnly: the page's scripts cannot read it; only the browser sends it.
      expect(await page.evaluate(() => document.cookie)).not.toContain('sid=')

      const authorized = await execute(page, me, '/user/me')
      expect(authorized.status).toBe(200)
      expect(authorized.cookieSent).toBe(`sid=${cookie?.value}`)
      await me.locator('.live-responses-table').getByText('"username": "admin"').waitFor()

      const logout = await tryOut(page, 'postUserLogout')
      expect(await execute(page, logout, '/user/logout')).toMatchObject({ status: 200 })
      expect(await execute(page, me, '/user/me')).toMatchObject({ status: 401 })

      expect(await page.evaluate(() => (window as unknown as { cspViolations: string[] }).cspViolations)).toEqual([])
    } catch (error) {
      failed = true
      const screenshot = join(workDir, 'failure.png')
      await page.screenshot({ path: screenshot, fullPage: true }).catch(() => {})
      throw new Error(`${(error as Error).message}\nscreenshot: ${screenshot}`, { cause: error })
    } finally {
      await page.close()
    }
  }, 90_000)
})
