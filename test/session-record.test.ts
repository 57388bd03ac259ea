// The packed session record: what packRecord writes, parseSession reads back, and anything else
// (a truncated, extended or corrupted value) is no session at all.

import { describe, expect, test } from 'bun:test'
import { encodePermissions, packRecord, parseSession, publicIdFor } from '../src/store'

const fields = {
  userId: 1234,
  username: 'alice.b-c_d',
  createdAt: 1_796_000_000_000,
  lastSeenAt: 1_796_000_600_000,
  expiresAt: 1_796_043_200_000,
  ip: '2001:db8::1',
  userAgentRef: 'zLQOnQrg',
  authenticatedAt: 1_796_000_300_000,
}
const { head, tail } = packRecord(fields)
const record = `${head}${encodePermissions(['user:read', 'audit:read'])}${tail}`

describe('session record', () => {
  test('reads back what packRecord wrote', () => {
    const session = parseSession(0, 'hash-of-the-token', record)
    expect(session).toMatchObject({
      tokenHash: 'hash-of-the-token',
      ...fields,
      permissions: ['user:read', 'audit:read'],
      userAgent: '',
    })
    expect(session?.publicId).toBe(publicIdFor('hash-of-the-token'))
  })

  test('no user agent and no permissions', () => {
    const bare = packRecord({ ...fields, userAgentRef: '' })
    const session = parseSession(0, 'h', `${bare.head}${encodePermissions([])}${bare.tail}`)
    expect(session?.userAgentRef).toBe('')
    expect(session?.permissions).toEqual([])
  })

  test('a record of the format before re-authentication (eight parts) last proved its password at creation', () => {
    const previous = record.slice(0, record.lastIndexOf('|'))
    expect(previous.split('|')).toHaveLength(8)
    const session = parseSession(0, 'h', previous)
    expect(session).toMatchObject({ userAgentRef: fields.userAgentRef, authenticatedAt: fields.createdAt })
  })

  test.each([
    ['missing', null],
    ['empty', ''],
    ['two parts short', record.split('|').slice(0, 7).join('|')],
    ['one part more', `${record}|extra`],
    ['no separators', 'garbage'],
    ['a user id that is not base 36', record.replace(/^[^|]*/, '!!')],
    ['an expiry that is not a number', record.split('|').with(3, '').join('|')],
    ['a last-seen that is not a number', record.split('|').with(4, '').join('|')],
    ['a creation time that is not a number', record.split('|').with(5, '').join('|')],
    ['an authentication time that is not a number', record.split('|').with(8, '!').join('|')],
  ])('%s: no session', (_, value) => {
    expect(parseSession(0, 'h', value)).toBeUndefined()
  })
})
