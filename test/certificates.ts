// A throwaway certificate authority for TLS tests, made with openssl in a directory of the test's
// own: a CA, a server certificate for the given names, and a client certificate, all signed by it.

import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { runOrThrow } from './services'

export interface Certificates {
  dir: string
  ca: string
  serverCert: string
  serverKey: string
  clientCert: string
  clientKey: string
}

/** `names` are subjectAltName entries, e.g. `IP:127.0.0.1`, `DNS:localhost`. */
export function makeCertificates(dir: string, names: readonly string[]): Certificates {
  const path = (file: string) => join(dir, file)
  const openssl = (...args: string[]) => runOrThrow(['openssl', ...args], dir)
  const newKey = (name: string) =>
    openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path(name))
  newKey('ca.key')
  openssl(
    'req',
    '-x509',
    '-new',
    '-key',
    path('ca.key'),
    '-subj',
    '/CN=Tessera test CA',
    '-days',
    '2',
    '-out',
    path('ca.crt'),
  )
  const sign = (name: string, subject: string, extensions: string) => {
    newKey(`${name}.key`)
    openssl('req', '-new', '-key', path(`${name}.key`), '-subj', subject, '-out', path(`${name}.csr`))
    writeFileSync(path(`${name}.ext`), extensions)
    openssl(
      'x509',
      '-req',
      '-in',
      path(`${name}.csr`),
      '-CA',
      path('ca.crt'),
      '-CAkey',
      path('ca.key'),
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      path(`${name}.ext`),
      '-out',
      path(`${name}.crt`),
    )
  }
  // clientAuth too: Redis nodes present it to one another on the cluster bus and replication links.
  sign(
    'server',
    '/CN=tessera-test-server',
    `subjectAltName=${names.join(',')}\nextendedKeyUsage=serverAuth,clientAuth\n`,
  )
  sign('client', '/CN=tessera', 'extendedKeyUsage=clientAuth\n')
  return {
    dir,
    ca: path('ca.crt'),
    serverCert: path('server.crt'),
    serverKey: path('server.key'),
    clientCert: path('client.crt'),
    clientKey: path('client.key'),
  }
}
