// SHA-256 of a string as unpadded base64url: session keys, public session ids, user-agent refs and
// rate-limit keys are all (truncated) digests. One helper, and on Bun its native SHA-256 one-shot,
// which builds no hash object and looks up no algorithm by name on the per-request path. Elsewhere
// (Node or Deno, for the verifier other services import) node:crypto gives the same bytes.

import { createHash } from 'node:crypto'

export const sha256Base64Url: (value: string) => string =
  typeof Bun === 'undefined'
    ? (value) => createHash('sha256').update(value).digest('base64url')
    : (value) => Bun.SHA256.hash(value, 'base64url')
