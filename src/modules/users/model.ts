// Request and response schemas for user routes; the single source of their types and their docs.

import { t } from 'elysia'
import {
  PASSWORD_MAX_LENGTH,
  PASSWORD_MIN_LENGTH,
  USERNAME_MAX_LENGTH,
  USERNAME_MIN_LENGTH,
  USERNAME_PATTERN,
  USERNAME_RULE,
} from '../../lib/limits'

export const Username = t.String({
  minLength: USERNAME_MIN_LENGTH,
  maxLength: USERNAME_MAX_LENGTH,
  pattern: USERNAME_PATTERN,
  description: `${USERNAME_RULE}. Case-insensitive.`,
  error: `username must be ${USERNAME_RULE}`,
  examples: ['alice'],
})

export const NewPassword = t.String({
  minLength: PASSWORD_MIN_LENGTH,
  maxLength: PASSWORD_MAX_LENGTH,
  description: `${PASSWORD_MIN_LENGTH}-${PASSWORD_MAX_LENGTH} characters.`,
  error: `password must be ${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters`,
  examples: ['correct horse battery staple'],
})

export const Credentials = t.Object({ username: Username, password: NewPassword }, { additionalProperties: false })

export const LoginBody = t.Object(
  {
    username: t.String({
      minLength: 1,
      maxLength: 64,
      error: 'username must be 1 to 64 characters',
      examples: ['alice'],
    }),
    password: t.String({
      minLength: 1,
      maxLength: PASSWORD_MAX_LENGTH,
      error: `password must be 1 to ${PASSWORD_MAX_LENGTH} characters`,
      examples: ['correct horse battery staple'],
    }),
  },
  { additionalProperties: false },
)

export const PermissionChangeBody = t.Object(
  {
    username: t.String({
      minLength: 1,
      maxLength: 64,
      error: 'username must be 1 to 64 characters',
      examples: ['alice'],
    }),
    permission: t.String({
      minLength: 1,
      maxLength: 64,
      error: 'permission must be 1 to 64 characters',
      examples: ['user:assign'],
    }),
  },
  { additionalProperties: false },
)

export const UserCreated = t.Object({ id: t.Integer(), username: t.String() })

export const Me = t.Object({
  id: t.Integer(),
  username: t.String(),
  permissions: t.Array(t.String()),
  session: t.Object({
    id: t.String({ description: 'Public session id, as in GET /sessions.' }),
    // ISO 8601 date-times. No `format` here: checking it on every /user/me answer costs more than
    // the rest of a cached session lookup.
    createdAt: t.String({ description: 'ISO 8601 date-time.' }),
    expiresAt: t.String({ description: 'Absolute expiry (ISO 8601); idle expiry comes sooner without use.' }),
    authenticatedAt: t.String({
      description:
        'When this session last proved the password (ISO 8601): login, POST /user/reauth or a password change.',
    }),
  }),
})

export const ReauthBody = t.Object(
  {
    password: t.String({
      minLength: 1,
      maxLength: PASSWORD_MAX_LENGTH,
      error: `password must be 1 to ${PASSWORD_MAX_LENGTH} characters`,
    }),
  },
  { additionalProperties: false },
)

export const Reauthenticated = t.Object({
  authenticatedAt: t.String({ format: 'date-time', description: 'The new proof of password.' }),
})

export const PermissionChangeResult = t.Object({
  userId: t.Integer(),
  username: t.String(),
  permissions: t.Optional(
    t.Array(t.String(), { description: "The user's permissions after the change; shown to holders of user:read." }),
  ),
  changed: t.Boolean({ description: 'False when the grant already existed (or the revoked one did not).' }),
  propagated: t.Boolean({
    description:
      'True when live sessions already carry the change; false if Redis was briefly unreachable and the outbox relay will apply it within seconds.',
  }),
})

export const LogoutResult = t.Object({
  loggedOut: t.Boolean({ description: 'False when there was no live session to end.' }),
})
