// Request-level helpers: client address, request ids, CSRF origin checks and bounded JSON bodies.

import { AppError } from './errors'

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

export function isSafeMethod(method: string): boolean {
  return SAFE_METHODS.has(method)
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/

/** Reuses a sane incoming X-Request-Id (a gateway's), else makes one. */
export function requestIdFor(request: Request): string {
  const incoming = request.headers.get('x-request-id')
  return incoming && REQUEST_ID.test(incoming) ? incoming : crypto.randomUUID()
}

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
    throw new AppError(403, 'cross_origin_request', 'Cross-origin requests are not allowed; check TRUSTED_ORIGINS.')
  }
  const site = request.headers.get('sec-fetch-site')
  if (site !== null && site !== 'same-origin' && site !== 'none') {
    throw new AppError(403, 'cross_origin_request', 'Cross-origin requests are not allowed; check TRUSTED_ORIGINS.')
  }
}

export const BODY_LIMIT_BYTES = 64 * 1024

export const payloadTooLarge = () =>
  new AppError(413, 'payload_too_large', `Request bodies are limited to ${BODY_LIMIT_BYTES / 1024} KiB.`)

/** Rejects bodies whose declared length is over the limit before anything reads them. */
export function assertDeclaredLength(request: Request): void {
  const length = request.headers.get('content-length')
  if (length !== null && Number(length) > BODY_LIMIT_BYTES) throw payloadTooLarge()
}

/** Reads a JSON body, stopping at the limit even when no Content-Length was sent (chunked). */
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
  try {
    return JSON.parse(text)
  } catch {
    throw new AppError(400, 'malformed_json', 'The request body is not valid JSON.')
  }
}
