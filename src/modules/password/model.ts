// Request and response schemas for changing one's own password.

import { t } from 'elysia'
import { PASSWORD_MAX_LENGTH } from '../../lib/limits'
import { NewPassword } from '../users/model'

export const PasswordChangeBody = t.Object(
  {
    currentPassword: t.String({
      minLength: 1,
      maxLength: PASSWORD_MAX_LENGTH,
      error: `currentPassword must be 1 to ${PASSWORD_MAX_LENGTH} characters`,
    }),
    newPassword: NewPassword,
    keepOtherSessions: t.Optional(
      t.Boolean({ default: false, description: 'Leave the other sessions alive (default: they end).' }),
    ),
  },
  { additionalProperties: false },
)

export const PasswordChanged = t.Object({
  otherSessionsEnded: t.Boolean({ description: 'True unless keepOtherSessions was set.' }),
  propagated: t.Boolean({
    description:
      'True when the other sessions have already ended everywhere; false if Redis was briefly unreachable and the outbox relay will end them within seconds.',
  }),
  session: t.Object({
    id: t.String({ description: 'Public session id; a new one, since it derives from the new token.' }),
    expiresAt: t.String({ format: 'date-time', description: 'Absolute expiry; a rotation never extends it.' }),
  }),
})
