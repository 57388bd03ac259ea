// Request-level helpers: client address, request ids, CSRF origin checks and bounded JSON bodies.

import type { Config } from '../config'
import { AppError } from './errors'
import { BODY_LIMIT_BYTES, JSON_MAX_DEPTH } from './limits'

export { BODY_LIMIT_BYTES } from './limits'

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

export function isSafeMethod(method: string): boolean {
  return SAFE_METHODS.has(method)
}

/** HSTS for a year, when the app is known to be served over HTTPS. */
const HSTS = 'max-age=31536000; includeSubDomains'

/**
 * Headers on every answer, errors included. Nothing an auth service answers should be cached, least
 * of all a Set-Cookie; no answer is a page to frame or to run anything in (the docs page sets its own
 * policy). HSTS only in production with Secure cookies, the one setup known to be HTTPS end to end:
 * sent over plain-http development it would pin a developer's browser to HTTPS for that host.
 */
export function responseHeaders(config: Pick<Config, 'production' | 'cookieSecure'>): Readonly<Record<string, string>> {
  return Object.freeze({
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
    'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
    ...(config.production && config.cookieSecure ? { 'strict-transport-security': HSTS } : {}),
  })
}

/** The media type of a Content-Type (Elysia passes it cut at ";") names JSON: application/json, in any case. */
export function isJsonMediaType(contentType: string): boolean {
  return contentType.trim().toLowerCase() === 'application/json'
}

/** The request's path for a log line: never its query, which may carry anything. */
export function pathForLog(request: Request): string {
  const url = request.url
  const start = url.startsWith('/') ? 0 : url.indexOf('/', url.indexOf('//') + 2)
  const end = url.indexOf('?', start)
  return (start < 0 ? '' : end < 0 ? url.slice(start) : url.slice(start, end)).slice(0, 200)
}

export const REQUEST_ID_HEADER = 'x-request-id'
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/

/** Reuses a sane incoming X-Request-Id (a gateway's), else makes one. */
export function requestIdFor(request: Request): string {
  const incoming = request.headers.get(REQUEST_ID_HEADER)
  return incoming && REQUEST_ID.test(incoming) ? incoming : crypto.randomUUID()
}

/**
 * Bun builds request.url from the Host header. A Host that names no host (`a@b`, `x y`, `a:b`)
 * leaves a relative or unparseable URL that neither the router nor the origin check can read, so
 * it is refused at once, as RFC 9112 asks (400).
 */
export function assertWellFormedHost(request: Request): void {
  const url = request.url
  const start = url.startsWith('http://') ? 7 : url.startsWith('https://') ? 8 : -1
  const end = url.indexOf('/', start)
  // The authority as Bun built it from the Host header (Bun makes request.url relative for a Host
  // with "@", "/" or spaces): a host name or IP literal and an optional port, checked on the
  // substring rather than by a URL parse, since every request runs it. The only user name a URL
  // can carry here is the padding fetch-guard.ts puts before a short host.
  const match = start < 0 ? null : AUTHORITY.exec(end < 0 ? url.slice(start) : url.slice(start, end))
  if (!match || Number(match[1] ?? 0) > 65535) throw new AppError('invalid_host', { field: 'host' })
}

const AUTHORITY = /^(?:_+@)?(?:[A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?$/

const IP_CHARS = /^[0-9A-Fa-f:.]{2,45}$/

/**
 * The client's address. X-Forwarded-For is honoured only with TRUST_PROXY, and then its last hop,
 * which is the one our own proxy appended; earlier hops are whatever the client chose to send.
 */
export function clientIp(request: Request, socketIp: string | undefined, trustProxy: boolean): string {
  if (trustProxy) {
    const hops = request.headers.get('x-forwarded-for')?.split(',')
    const last = hops?.[hops.length - 1]?.trim()
    if (last && IP_CHARS.test(last)) return last
  }
  return socketIp && IP_CHARS.test(socketIp) ? socketIp : ''
}

/**
 * CSRF defence for cookie-authenticated state changes: a browser always sends Origin on a
 * cross-origin POST (and Sec-Fetch-Site on modern ones), so anything naming a foreign origin is
 * refused. Requests with neither header come from non-browser clients, which hold no ambient cookie
 * of a victim and are let through.
 */
export function assertSameOrigin(request: Request, trustedOrigins: readonly string[]): void {
  if (isSafeMethod(request.method)) return
  const origin = request.headers.get('origin')
  if (origin !== null) {
    if (origin === new URL(request.url).origin || trustedOrigins.includes(origin)) return
    throw new AppError('cross_origin_request')
  }
  const site = request.headers.get('sec-fetch-site')
  if (site !== null && site !== 'same-origin' && site !== 'none') {
    throw new AppError('cross_origin_request')
  }
}

export const payloadTooLarge = () => new AppError('payload_too_large')

/** Rejects bodies whose declared length is over the limit before anything reads them. */
export function assertDeclaredLength(request: Request): void {
  const length = request.headers.get('content-length')
  if (length !== null && Number(length) > BODY_LIMIT_BYTES) throw payloadTooLarge()
}

/**
 * True when JSON text opens more than `max` arrays or objects at once. One pass over the text,
 * outside strings; malformed text is left for JSON.parse to refuse.
 */
export function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c)
        i++ // backslash: skip the escaped character
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true
    } else if (c === 0x5d || c === 0x7d) depth--
  }
  return false
}

/**
 * Reads a JSON body, stopping at the limit even when no Content-Length was sent (chunked), and
 * refusing nesting deeper than JSON_MAX_DEPTH before it is parsed.
 */
export async function readJsonBody(request: Request): Promise<unknown> {
  const reader = request.body?.getReader()
  if (!reader) return undefined
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > BODY_LIMIT_BYTES) {
      await reader.cancel()
      throw payloadTooLarge()
    }
    chunks.push(value)
  }
  if (size === 0) return undefined
  const text = new TextDecoder('utf-8', { fatal: false }).decode(Buffer.concat(chunks))
  if (nestsDeeperThan(text, JSON_MAX_DEPTH)) throw new AppError('json_too_deep')
  try {
    return JSON.parse(text)
  } catch {
    throw new AppError('malformed_json')
  }
}
