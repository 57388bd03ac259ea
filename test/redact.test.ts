// Passwords never printed: URLs are redacted (userinfo and a `password` query parameter), cluster
// seed nodes too, and a line that quotes a password anyway has it cut out. Pure functions.

import { describe, expect, test } from 'bun:test'
import { passwordsIn, redact, redactNode, scrub } from '../src/lib/redact'

describe('redact', () => {
  test('hides the password of a URL, and a password query parameter', () => {
    expect(redact('redis://app:s3cret@10.0.0.5:6379/0')).toBe('redis://app:***@10.0.0.5:6379/0')
    expect(redact('rediss://:s3cret@cache.internal:6380')).toBe('rediss://:***@cache.internal:6380')
    expect(redact('redis://cache:6379/0?password=s3cret')).toBe('redis://cache:6379/0?password=***')
    expect(redact('postgres://app:p%40ss@db/tessera?sslmode=verify-full')).toBe(
      'postgres://app:***@db/tessera?sslmode=verify-full',
    )
    expect(redact('redis://cache:6379/0')).toBe('redis://cache:6379/0')
    expect(redact('not a url')).toBe('(unparseable URL)')
  })

  test('leaves a host:port seed node as it is', () => {
    expect(redactNode('10.0.0.5:7000')).toBe('10.0.0.5:7000')
    expect(redactNode('rediss://:s3cret@10.0.0.5:7000')).toBe('rediss://:***@10.0.0.5:7000')
  })
})

describe('scrub', () => {
  test('cuts every password of the configuration out of a line, as written and decoded', () => {
    const secrets = passwordsIn([
      'redis://app:p%40ss%3Aword@cache:6379',
      'postgres://app:other@db/tessera',
      'redis://cache?password=third',
      '10.0.0.5:7000',
    ])
    expect(secrets).toContain('p@ss:word')
    expect(scrub('auth p@ss:word and p%40ss%3Aword, other, third', secrets)).toBe('auth *** and ***, ***, ***')
  })
})
