// Schemas for session listings and revocations, shared by the user's own routes and the admin's.

import { t } from 'elysia'

/** Milliseconds since the epoch as the ISO 8601 text every view of a session shows. */
export const iso = (ms: number) => new Date(ms).toISOString()

export const PublicSessionId = t.String({
  pattern: '^[A-Za-z0-9_-]{16}$',
  description: 'Public session id from a listing; unrelated to the token.',
  error: 'id must be a session id from GET /sessions',
})

export const SessionView = t.Object({
  id: t.String({ description: 'Public session id; neither the token nor its hash.' }),
  createdAt: t.String({ format: 'date-time' }),
  lastSeenAt: t.String({
    format: 'date-time',
    description: 'Last recorded activity; written back at most every few seconds.',
  }),
  expiresAt: t.String({ format: 'date-time', description: 'Absolute expiry; idle expiry comes sooner without use.' }),
  ip: t.String({ description: 'Client address at login (empty when unknown).' }),
  userAgent: t.String({ description: 'User agent at login, printable ASCII, truncated.' }),
  current: t.Boolean({ description: 'True for the session making this request.' }),
})

export const SessionList = t.Object({ sessions: t.Array(SessionView, { description: 'Newest first.' }) })

export const SessionIdParams = t.Object({ id: PublicSessionId })

export const EndAllQuery = t.Object({
  all: t.Optional(t.Boolean({ description: 'Also end the current session (and clear its cookie).', default: false })),
})

export const SessionsEnded = t.Object({
  ended: t.Integer({ description: 'How many sessions ended.' }),
  currentEnded: t.Boolean({ description: 'True when the session making this request was among them.' }),
})
