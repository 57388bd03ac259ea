// API documentation: the OpenAPI spec at /swagger/json and Swagger UI at /swagger, with the UI's
// scripts served from the installed swagger-ui-dist package so the page works without internet.

import { createHash } from 'node:crypto'
import { openapi } from '@elysiajs/openapi'
import { unwrapSchema } from '@elysiajs/openapi/openapi'
import { SwaggerUIRender } from '@elysiajs/openapi/swagger'
import { Elysia, type InternalRoute } from 'elysia'
import stylesheet from 'swagger-ui-dist/swagger-ui.css' with { type: 'text' }
import bundle from 'swagger-ui-dist/swagger-ui-bundle.js' with { type: 'text' }
import type { Config } from '../../config'
import { AppError, ErrorBody } from '../../lib/errors'

/**
 * The UI's two files, imported as text: Bun and Deno both read them from node_modules when run from
 * source, and `bun build --compile` embeds them in the program, which has no node_modules beside it.
 */
const ASSETS: ReadonlyMap<string, { body: string; type: string }> = new Map([
  ['swagger-ui-bundle.js', { body: bundle, type: 'text/javascript; charset=utf-8' }],
  ['swagger-ui.css', { body: stylesheet, type: 'text/css; charset=utf-8' }],
])

export const SESSION_SECURITY = [{ sessionCookie: [] }]

const PAGE_PATH = '/swagger'
const SPEC_PATH = '/swagger/json'

const INFO = {
  title: 'Tessera',
  version: '0.1.0',
  // Also written unescaped into the page's <meta content="...">: no double quotes here.
  description:
    'Session server: log in with a password, get an opaque session cookie; routes need nothing, a session (401 without), or a named permission (403 without). After POST /user/login in this page, the Try it out button sends the cookie automatically.',
}

/**
 * The Swagger UI page, rendered once with the plugin's own template. The spec's URL is absolute:
 * the plugin's page uses a relative one, which /swagger/ (loose paths serve it too) resolves to
 * /swagger/swagger/json. No validator badge: it would send the spec's URL to a third party.
 */
const PAGE = SwaggerUIRender(INFO, {
  url: SPEC_PATH,
  dom_id: '#swagger-ui',
  cdn: '/swagger/assets/swagger-ui-bundle.js',
  theme: '/swagger/assets/swagger-ui.css',
  autoDarkMode: false,
  persistAuthorization: true,
  withCredentials: true,
  validatorUrl: 'none',
})

/**
 * The page's policy. Scripts: its own origin, and the page's one inline script (which starts
 * Swagger UI) by its hash, nothing else inline. Styles: its own origin (Swagger UI sets the styles
 * it renders through the DOM, which style-src does not restrict). Images: its own origin and the
 * data: icons in the stylesheet. Requests (the spec, Try it out): its own origin. Checked in
 * headless Chromium: every operation expands and runs with no violation reported.
 */
const PAGE_CSP = [
  "default-src 'none'",
  `script-src 'self' ${[...PAGE.matchAll(/<script>([\s\S]*?)<\/script>/g)]
    .map(
      ([, script]) =>
        `'sha256-${createHash('sha256')
          .update(script ?? '')
          .digest('base64')}'`,
    )
    .join(' ')}`,
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

interface SpecOperation {
  requestBody?: { content?: Record<string, unknown> }
}

/**
 * The generator lists request content only for named parsers; ours is a function (it enforces the
 * 64 KiB limit and refuses forms), so every requestBody came out with empty `content`. Every body
 * Tessera accepts is JSON: declare it, from the route's own schema.
 */
function declareJsonBodies(spec: unknown, routes: readonly InternalRoute[]): void {
  const paths = (spec as { paths?: Record<string, Record<string, SpecOperation>> } | undefined)?.paths
  if (!paths) return
  for (const route of routes) {
    const operation = paths[route.path]?.[route.method.toLowerCase()]
    const schema = unwrapSchema(route.hooks?.body)
    if (!operation?.requestBody || !schema || Object.keys(operation.requestBody.content ?? {}).length > 0) continue
    operation.requestBody.content = { 'application/json': { schema } }
  }
}

export function docs(config: Config) {
  const plugin = new Elysia({ name: 'tessera.docs' })
  // Protected in the types, but it is what the OpenAPI plugin itself reads: every route of the app
  // this plugin is mounted in, rebound by `use`.
  const appRoutes = () => (plugin as unknown as { getGlobalRoutes(): InternalRoute[] }).getGlobalRoutes()
  return plugin
    .onAfterHandle(({ path, response }) => {
      if (path === SPEC_PATH) declareJsonBodies(response, appRoutes())
    })
    .get(
      '/swagger/assets/:file',
      ({ params, set }) => {
        const asset = ASSETS.get(params.file)
        if (!asset) throw new AppError('not_found')
        set.headers['content-type'] = asset.type
        return asset.body
      },
      { detail: { hide: true } },
    )
    .get(
      PAGE_PATH,
      ({ set }) => {
        set.headers['content-type'] = 'text/html; charset=utf-8'
        set.headers['content-security-policy'] = PAGE_CSP
        return PAGE
      },
      { detail: { hide: true } },
    )
    .use(
      openapi({
        path: PAGE_PATH,
        specPath: SPEC_PATH,
        // The page is ours (above); the plugin serves the spec only.
        provider: null,
        exclude: { paths: ['/swagger/assets/:file'] },
        references: undefined,
        documentation: {
          info: INFO,
          tags: [
            { name: 'auth', description: 'Log in, log out, who am I' },
            { name: 'users', description: 'Registration and permissions' },
            { name: 'permissions', description: 'The permission catalogue' },
            { name: 'sessions', description: 'My sessions: list them, end one, end the others' },
            { name: 'admin', description: 'Users and sessions, for holders of the admin permissions' },
            { name: 'gateway', description: 'Forward auth for nginx, Traefik and Envoy' },
            { name: 'health', description: 'Liveness and readiness' },
          ],
          components: {
            securitySchemes: {
              sessionCookie: {
                type: 'apiKey',
                in: 'cookie',
                name: config.cookieName,
                description: 'Set by POST /user/login. HttpOnly: the browser sends it; scripts cannot read it.',
              },
            },
            schemas: { Error: ErrorBody as never },
          },
        },
      }),
    )
}
