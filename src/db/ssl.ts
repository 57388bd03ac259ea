// libpq's sslmode, sslrootcert, sslcert and sslkey in DATABASE_URL, mapped onto postgres.js, which
// reads only `sslmode` itself and verifies against the system's CAs alone: `verify-full` with a
// private CA would fail, and `require` with a root certificate would verify nothing.

import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import type { ConnectionOptions } from 'node:tls'

export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const
export type SslMode = (typeof SSL_MODES)[number]

/** The URL's TLS settings, as written: file paths, not their contents. */
export interface PostgresTlsSettings {
  mode: SslMode | undefined
  /** A PEM file of trusted CAs, or `system` for the system's. */
  rootCert: string | undefined
  cert: string | undefined
  key: string | undefined
}

const OWN_PARAMETERS = ['sslmode', 'sslrootcert', 'sslcert', 'sslkey']
// postgres.js reads these itself (`ssl=true`, direct TLS negotiation): left alone.
const DRIVER_PARAMETERS = ['ssl', 'sslnegotiation']

/** Reads the TLS parameters of a postgres:// URL; throws on a value or parameter it cannot honour. */
export function postgresTlsSettings(url: string): PostgresTlsSettings {
  const query = new URL(url).searchParams
  for (const name of query.keys()) {
    if (name.startsWith('ssl') && !OWN_PARAMETERS.includes(name) && !DRIVER_PARAMETERS.includes(name)) {
      throw new Error(`${name} is not supported (sslmode, sslrootcert, sslcert and sslkey are)`)
    }
  }
  const text = query.get('sslmode') ?? undefined
  if (text !== undefined && !(SSL_MODES as readonly string[]).includes(text)) {
    throw new Error(`sslmode=${text} is not one of ${SSL_MODES.join(', ')}`)
  }
  const rootCert = query.get('sslrootcert') ?? undefined
  // As libpq 16: the system's CAs mean verify-full, which is the default with them.
  const mode = (text as SslMode | undefined) ?? (rootCert === 'system' ? 'verify-full' : undefined)
  if (rootCert === 'system' && mode !== 'verify-full') {
    throw new Error(`sslrootcert=system needs sslmode=verify-full, not ${mode}`)
  }
  const cert = query.get('sslcert') ?? undefined
  const key = query.get('sslkey') ?? undefined
  if (Boolean(cert) !== Boolean(key)) throw new Error('sslcert and sslkey go together')
  if ((cert || rootCert) && (mode === undefined || mode === 'disable')) {
    throw new Error('sslrootcert, sslcert and sslkey need an sslmode that uses TLS')
  }
  return { mode, rootCert, cert, key }
}

/** postgres.js's `ssl` option: undefined leaves the driver's default (no TLS). */
export type PostgresSsl = false | 'prefer' | 'require' | ConnectionOptions | undefined

/**
 * The `ssl` option for these settings, libpq's way: `allow` and `prefer` try TLS without verifying
 * and fall back to plain text; `require` encrypts without verifying, unless a root certificate is
 * given (then as verify-ca); `verify-ca` checks the chain; `verify-full` the chain and the host name.
 */
export function postgresSsl(
  settings: PostgresTlsSettings,
  host: string,
  readFile: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): PostgresSsl {
  const { mode, rootCert } = settings
  if (mode === undefined) return undefined
  if (mode === 'disable') return false
  if (mode === 'allow' || mode === 'prefer') return 'prefer'
  if (mode === 'require' && !rootCert && !settings.cert) return 'require'
  const verifyChain = mode !== 'require' || rootCert !== undefined
  return {
    rejectUnauthorized: verifyChain,
    ...(rootCert && rootCert !== 'system' ? { ca: readFile(rootCert) } : {}),
    ...(settings.cert && settings.key ? { cert: readFile(settings.cert), key: readFile(settings.key) } : {}),
    // Node checks the name by default; only verify-full asks for it. SNI takes names, not addresses.
    ...(mode === 'verify-full' ? {} : { checkServerIdentity: () => undefined }),
    ...(isIP(host) ? {} : { servername: host }),
  }
}

/** The URL without the parameters mapped here, which postgres.js would otherwise misread. */
export function withoutTlsParameters(url: string): string {
  const parsed = new URL(url)
  for (const name of OWN_PARAMETERS) parsed.searchParams.delete(name)
  return parsed.toString()
}

/** The URL for postgres.js and its `ssl` option, from a DATABASE_URL; reads the certificate files. */
export function postgresConnection(url: string): { url: string; ssl: PostgresSsl } {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '')
  return { url: withoutTlsParameters(url), ssl: postgresSsl(postgresTlsSettings(url), host) }
}
