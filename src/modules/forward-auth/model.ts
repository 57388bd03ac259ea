// The forward-auth endpoint's query schema.

import { t } from 'elysia'

// Other parameters are allowed: behind Envoy they are the original request's own.
export const ForwardAuthQuery = t.Object(
  {
    permission: t.Optional(
      t.String({
        maxLength: 512,
        description: 'Permission(s) the request needs, comma-separated; all are required.',
        examples: ['user:read'],
      }),
    ),
  },
  { additionalProperties: true },
)
