// libpq's sslmode and certificate parameters mapped onto postgres.js (src/db/ssl.ts). Pure
// functions; the files are "read" by a stub. Real connections: test/postgres-credentials.test.ts.

import { describe, expect, test } from 'bun:test'
import type { ConnectionOptions } from 'node:tls'
import { postgresSsl, postgresTlsSettings, withoutTlsParameters } from '../src/db/ssl'

const read = (path: string) => `PEM of ${path}`
const sslFor = (query: string, host = 'db.internal') =>
  postgresSsl(postgresTlsSettings(`postgres://app:pw@${host}:5432/tessera${query}`), host, read)

describe('sslmode', () => {
  test('absent: the driver default, no TLS', () => {
    expect(sslFor('')).toBeUndefined()
  })

  test('disable: no TLS; allow and prefer: TLS when offered, unverified, else plain text', () => {
    expect(sslFor('?sslmode=disable')).toBe(false)
    expect(sslFor('?sslmode=allow')).toBe('prefer')
    expect(sslFor('?sslmode=prefer')).toBe('prefer')
  })

  test('require: TLS without verification, unless a root certificate is given (then verify-ca)', () => {
    expect(sslFor('?sslmode=require')).toBe('require')
    const withRoot = sslFor('?sslmode=require&sslrootcert=/ca.pem') as ConnectionOptions
    expect(withRoot).toMatchObject({ rejectUnauthorized: true, ca: 'PEM of /ca.pem' })
    expect(withRoot.checkServerIdentity?.('db.internal', {} as never)).toBeUndefined()
  })

  test('verify-ca: the chain is checked, the host name is not', () => {
    const ssl = sslFor('?sslmode=verify-ca&sslrootcert=/ca.pem') as ConnectionOptions
    expect(ssl).toMatchObject({ rejectUnauthorized: true, ca: 'PEM of /ca.pem', servername: 'db.internal' })
    expect(typeof ssl.checkServerIdentity).toBe('function')
  })

  test("verify-full: the chain and the host name (Node's own check); system CAs without sslrootcert", () => {
    const ssl = sslFor('?sslmode=verify-full&sslrootcert=/ca.pem') as ConnectionOptions
    expect(ssl).toEqual({ rejectUnauthorized: true, ca: 'PEM of /ca.pem', servername: 'db.internal' })
    expect(sslFor('?sslmode=verify-full')).toEqual({ rejectUnauthorized: true, servername: 'db.internal' })
    expect(sslFor('?sslrootcert=system')).toEqual({ rejectUnauthorized: true, servername: 'db.internal' })
  })

  test('an IP address is checked but not sent as SNI', () => {
    expect(sslFor('?sslmode=verify-full', '10.0.0.7')).toEqual({ rejectUnauthorized: true })
  })

  test('a client certificate and key', () => {
    expect(sslFor('?sslmode=verify-full&sslrootcert=/ca.pem&sslcert=/c.pem&sslkey=/k.pem')).toMatchObject({
      cert: 'PEM of /c.pem',
      key: 'PEM of /k.pem',
    })
    expect(sslFor('?sslmode=require&sslcert=/c.pem&sslkey=/k.pem')).toMatchObject({ rejectUnauthorized: false })
  })
})

describe('what cannot be honoured is refused', () => {
  const refusal = (query: string) => {
    try {
      postgresTlsSettings(`postgres://db/tessera${query}`)
    } catch (error) {
      return (error as Error).message
    }
    return undefined
  }
  test.each([
    ['?sslmode=on', 'sslmode=on is not one of'],
    ['?sslmode=require&sslcrl=/crl.pem', 'sslcrl is not supported'],
    ['?sslmode=require&sslpassword=x', 'sslpassword is not supported'],
    ['?sslmode=prefer&sslrootcert=system', 'sslrootcert=system needs sslmode=verify-full'],
    ['?sslmode=verify-full&sslcert=/c.pem', 'sslcert and sslkey go together'],
    ['?sslrootcert=/ca.pem', 'need an sslmode that uses TLS'],
    ['?sslmode=disable&sslrootcert=/ca.pem', 'need an sslmode that uses TLS'],
  ])('%s', (query, message) => {
    expect(refusal(query)).toContain(message)
  })

  test("the driver's own ssl and sslnegotiation parameters are left to it", () => {
    expect(refusal('?ssl=true')).toBeUndefined()
    expect(refusal('?sslmode=require&sslnegotiation=direct')).toBeUndefined()
  })
})

test('the URL handed to postgres.js keeps everything but the parameters mapped here', () => {
  expect(
    withoutTlsParameters('postgres://app:pw@db/tessera?sslmode=verify-full&sslrootcert=/ca.pem&application_name=x'),
  ).toBe('postgres://app:pw@db/tessera?application_name=x')
})
