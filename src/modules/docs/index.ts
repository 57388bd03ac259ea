// API documentation: the OpenAPI spec at /swagger/json and Swagger UI at /swagger, with the UI's
// scripts served from the installed swagger-ui-dist package so the page works without internet.

import { dirname, join } from 'node:path'
import { openapi } from '@elysiajs/openapi'
import { Elysia } from 'elysia'
import type { Config } from '../../config'
import { ErrorBody } from '../../lib/errors'

const ASSETS_DIR = dirname(require.resolve('swagger-ui-dist/package.json'))
const ASSETS = new Set(['swagger-ui-bundle.js', 'swagger-ui.css', 'favicon-32x32.png'])

export const SESSION_SECURITY = [{ sessionCookie: [] }]

export function docs(config: Config) {
  return new Elysia({ name: 'tessera.docs' })
    .get(
      '/swagger/assets/:file',
      ({ params, status }) => (ASSETS.has(params.file) ? Bun.file(join(ASSETS_DIR, params.file)) : status(404)),
      { detail: { hide: true } },
    )
    .use(
      openapi({
        path: '/swagger',
        specPath: '/swagger/json',
        provider: 'swagger-ui',
        swagger: {
          cdn: '/swagger/assets/swagger-ui-bundle.js',
          theme: '/swagger/assets/swagger-ui.css',
          autoDarkMode: false,
          persistAuthorization: true,
          withCredentials: true,
        },
        exclude: { paths: ['/swagger/assets/:file'] },
        references: undefined,
        documentation: {
          info: {
            title: 'Tessera',
            version: '0.1.0',
            description:
              'Session server: log in with a password, get an opaque session cookie; routes need nothing, a session (401 without), or a named permission (403 without). After POST /user/login in this page, "Try it out" sends the cookie automatically.',
          },
          tags: [
            { name: 'auth', description: 'Log in, log out, who am I' },
            { name: 'users', description: 'Registration and permissions' },
            { name: 'permissions', description: 'The permission catalogue' },
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
