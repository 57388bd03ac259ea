// Connection URLs and error lines without their passwords, for logs and the one line a failed boot
// prints.

/** A URL with its password, and a `password` query parameter (which ioredis reads), shown as ***. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = '***'
    if (parsed.searchParams.has('password')) parsed.searchParams.set('password', '***')
    return parsed.toString()
  } catch {
    return '(unparseable URL)'
  }
}

/** A Redis Cluster seed node as given: `host:port` holds no secret, a URL is redacted. */
export const redactNode = (node: string) => (node.includes('://') ? redact(node) : node)

/** The passwords in these URLs, as written and decoded, to be cut out of any line that might quote one. */
export function passwordsIn(urls: readonly string[]): string[] {
  const secrets = new Set<string>()
  for (const url of urls) {
    if (!URL.canParse(url)) continue
    const parsed = new URL(url)
    for (const secret of [parsed.password, parsed.searchParams.get('password') ?? '']) {
      if (!secret) continue
      secrets.add(secret)
      try {
        secrets.add(decodeURIComponent(secret))
      } catch {
        // A malformed escape: the text as written is all there is to cut.
      }
    }
  }
  // Longest first, so a password that contains another is cut whole.
  return [...secrets].sort((a, b) => b.length - a.length)
}

/** The line with every occurrence of each secret replaced by ***. */
export function scrub(line: string, secrets: readonly string[]): string {
  return secrets.reduce((text, secret) => text.replaceAll(secret, '***'), line)
}
