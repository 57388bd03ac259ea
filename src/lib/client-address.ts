// The client address as rate limits count it: an IPv4 address alone, an IPv6 address by its
// network prefix (a /64 by default), since one subscriber is routinely handed a whole /64 and
// could otherwise step through addresses to multiply the attempts allowed.

import { isIPv4, isIPv6 } from 'node:net'

/** The 8 hextets of an IPv6 address, or undefined when it is not one. */
function hextets(address: string): number[] | undefined {
  let text = address.toLowerCase()
  const zone = text.indexOf('%')
  if (zone >= 0) text = text.slice(0, zone)
  if (!isIPv6(text)) return undefined
  // A trailing dotted quad (::ffff:1.2.3.4) is two hextets.
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text)
  if (quad) {
    const [a, b, c, d] = quad.slice(1).map(Number) as [number, number, number, number]
    text = `${text.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const [head = '', tail] = text.split('::')
  const left = head ? head.split(':') : []
  const right = tail === undefined ? [] : tail ? tail.split(':') : []
  const missing = 8 - left.length - right.length
  const parts = [...left, ...Array(tail === undefined ? 0 : missing).fill('0'), ...right]
  return parts.length === 8 ? parts.map((part) => Number.parseInt(part, 16)) : undefined
}

/**
 * The key a client address is counted under: `ipv4:a.b.c.d`, `ipv6:<first prefixBits bits>/<bits>`,
 * or `unknown`. An IPv4-mapped IPv6 address counts as its IPv4 address.
 */
export function limitSubject(address: string, ipv6PrefixBits: number): string {
  if (!address) return 'unknown'
  if (isIPv4(address)) return `ipv4:${address}`
  const words = hextets(address)
  if (!words) return `other:${address}`
  const [, , , , , sixth = 0, high = 0, low = 0] = words
  const mapped = words.slice(0, 5).every((w) => w === 0) && sixth === 0xffff
  if (mapped) return `ipv4:${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`
  let bits = ipv6PrefixBits
  const kept = words.map((word) => {
    const take = Math.max(0, Math.min(16, bits))
    bits -= 16
    return take === 0 ? 0 : word & (0xffff << (16 - take)) & 0xffff
  })
  return `ipv6:${kept.map((w) => w.toString(16)).join(':')}/${ipv6PrefixBits}`
}
