// Reading the session token out of a raw Cookie header, as the auth plugin and the verifier do.

import { describe, expect, test } from 'bun:test'
import { cookieFromHeader } from '../src/store'

describe('cookieFromHeader', () => {
  const cases: [string | null, string | undefined][] = [
    ['a=1; sid=abc; b=2', 'abc'],
    ['sid=abc', 'abc'],
    ['a=1;sid=x', 'x'],
    [' sid = v ;', 'v'],
    ['sid=', ''],
    ['sid=1; sid=2', '1'],
    ['noeq; sid=z', 'z'],
    ['a=b=c; sid=q', 'q'],
    ['xsid=abc', undefined],
    ['sidx=abc', undefined],
    [';;;', undefined],
    ['', undefined],
    [null, undefined],
  ]
  for (const [header, expected] of cases) {
    test(`${JSON.stringify(header)} gives ${JSON.stringify(expected)}`, () => {
      expect(cookieFromHeader(header, 'sid')).toBe(expected)
    })
  }
})
