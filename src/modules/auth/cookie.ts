// The session cookie's attributes, in one place: HttpOnly, SameSite=Lax, Path=/, Secure with the
// __Host- prefix unless COOKIE_SECURE=false, and a Max-Age equal to the absolute session lifetime.

import type { Config } from '../../config'

interface CookieHandle {
  set(options: {
    value: string
    httpOnly: boolean
    secure: boolean
    sameSite: 'lax'
    path: string
    maxAge: number
    expires?: Date
  }): unknown
}

interface CookieSetter {
  [name: string]: CookieHandle
}

export function setSessionCookie(config: Config, cookie: CookieSetter, token: string): void {
  cookie[config.cookieName]?.set({
    value: token,
    httpOnly: true,
    secure: config.cookieSecure,
    sameSite: 'lax',
    path: '/',
    maxAge: Math.floor(config.sessionAbsoluteTimeoutMs / 1000),
  })
}

export function clearSessionCookie(config: Config, cookie: CookieSetter): void {
  cookie[config.cookieName]?.set({
    value: '',
    httpOnly: true,
    secure: config.cookieSecure,
    sameSite: 'lax',
    path: '/',
    maxAge: 0,
    expires: new Date(0),
  })
}
