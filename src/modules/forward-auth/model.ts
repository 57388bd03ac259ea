// The forward-auth endpoint's query schema.

import { t } from 'elysia'

// Other parameters are allowed: behind Envoy they are the original request's own.
export const ForwardAuthQuery = t.Object(
  {
    // An array, so a repeated parameter (`?permission=a&permission=b`) keeps every value: each
    // one named is required, however it was spelled.
    permission: t.Optional(
      t.Array(t.String({ maxLength: 64 }), {
        maxItems: 32,
        description: 'Permission(s) the request needs, repeated or comma-separated; all are required.',
        examples: [['user:read']],
      }),
    ),
  },
  { additionalProperties: true },
)
