// Routes for logging in and out and for reading one's own identity.

import { Elysia } from 'elysia'
import type { AppContext } from '../../context'
import { errors } from '../../lib/responses'
import type { Session } from '../../store'
import { cookieFromHeader } from '../../store'
import { SESSION_SECURITY } from '../docs'
import { iso } from '../sessions/model'
import { LoginBody, LogoutResult, Me, ReauthBody, Reauthenticated } from '../users/model'
import { clientFacts } from './client'
import { clearSessionCookie, setSessionCookie } from './cookie'
import type { authPlugin } from './plugin'
import { login, logout, reauthenticate } from './service'

// A cached session answers many /user/me requests; its view is built once per session object (and
// again only if its permissions are replaced). Pre-serialised text in a Response would save
// nothing: Elysia then copies its headers into it.
const views = new WeakMap<Session, typeof Me.static>()

function meView(session: Session): typeof Me.static {
  let view = views.get(session)
  if (!view || view.permissions !== session.permissions) {
    view = {
      id: session.userId,
      username: session.username,
      permissions: session.permissions,
      session: {
        id: session.publicId,
        createdAt: iso(session.createdAt),
        expiresAt: iso(session.expiresAt),
        authenticatedAt: iso(session.authenticatedAt),
      },
    }
    views.set(session, view)
  }
  return view
}

export function authRoutes(ctx: AppContext, auth: ReturnType<typeof authPlugin>) {
  const { config } = ctx
  return (
    new Elysia({ name: 'tessera.routes.auth', seed: ctx.id, tags: ['auth'] })
      .use(auth)
      .post(
        '/user/login',
        async ({ body, cookie, request, server }) => {
          const facts = clientFacts(ctx, request, server)
          const { token, session } = await login(ctx, {
            ...body,
            ...facts,
            presentedToken: cookieFromHeader(request.headers.get('cookie'), config.cookieName),
          })
          setSessionCookie(config, cookie, token)
          return meView(session)
        },
        {
          body: LoginBody,
          response: { 200: Me, ...errors(401, 403, 413, 415, 422, 429) },
          detail: {
            summary: 'Log in',
            description:
              'Verifies the password and sets a new session cookie. Any session cookie sent along is ended. Unknown user, wrong password and disabled account all answer the same 401.',
          },
        },
      )
      .post(
        '/user/logout',
        async ({ cookie, request, server }) => {
          const facts = clientFacts(ctx, request, server)
          const presented = cookieFromHeader(request.headers.get('cookie'), config.cookieName)
          const loggedOut = await logout(ctx, presented, facts.ip, facts.userAgent)
          clearSessionCookie(config, cookie)
          return { loggedOut }
        },
        {
          response: { 200: LogoutResult, ...errors(403) },
          detail: {
            summary: 'Log out',
            description: 'Ends the current session everywhere and clears the cookie. Safe to repeat.',
            // The empty requirement marks the cookie as optional.
            security: [...SESSION_SECURITY, {}],
          },
        },
      )
      // Elysia awaits a handler whose source reads like `return f(...)`, a tick per request;
      // `session &&` keeps this one synchronous (the auth macro guarantees a session).
      .get('/user/me', ({ session }) => session && meView(session), {
        auth: true,
        response: { 200: Me, ...errors(401) },
        detail: {
          summary: 'Who am I',
          description: 'The logged-in user, their current permissions and this session.',
        },
      })
      .post(
        '/user/reauth',
        async ({ session, actor, body }) => ({
          authenticatedAt: iso(await reauthenticate(ctx, { session, actor, password: body.password })),
        }),
        {
          auth: true,
          body: ReauthBody,
          response: { 200: Reauthenticated, ...errors(401, 403, 413, 415, 422, 429) },
          detail: {
            summary: 'Prove my password again',
            description:
              'Step-up re-authentication: verifies the password of the logged-in account (403 `wrong_password` when wrong; counted and limited like a login, 429 past the limits) and marks this session fresh. Routes that change permissions or accounts, and ending everyone’s sessions, need a proof within REAUTH_WINDOW (default 10 minutes) and answer 401 `reauth_required` without one. No new token: the cookie stays.',
          },
        },
      )
  )
}
