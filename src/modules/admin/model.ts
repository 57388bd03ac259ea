// Schemas for the administration routes under /admin.

import { t } from 'elysia'
import { ROW_ID_MAX } from '../../lib/limits'
import { PublicSessionId } from '../sessions/model'

// Bounded to PostgreSQL's integer, so an id past it is a 422 here rather than an error there.
const UserId = t.Integer({ minimum: 1, maximum: ROW_ID_MAX, description: 'User id.' })

export const AdminUser = t.Object({
  id: t.Integer(),
  username: t.String(),
  disabled: t.Boolean(),
  permissions: t.Array(t.String(), { description: 'Granted permissions; superuser implies all the others.' }),
  createdAt: t.String({ format: 'date-time' }),
  updatedAt: t.String({ format: 'date-time' }),
})

export const UserPage = t.Object({
  users: t.Array(AdminUser, { description: 'Ordered by id.' }),
  nextAfter: t.Union([t.Integer(), t.Null()], {
    description: 'Pass as `after` for the next page; null on the last page.',
  }),
})

export const UserListQuery = t.Object({
  q: t.Optional(
    // Usernames hold only these characters, so nothing else could match; a NUL never reaches PostgreSQL.
    t.String({
      maxLength: 64,
      pattern: '^[A-Za-z0-9._-]*$',
      description: 'Case-insensitive substring of the username.',
      error: 'q may contain only letters, digits, dots, dashes and underscores',
      examples: ['ali'],
    }),
  ),
  disabled: t.Optional(t.Boolean({ description: 'Only disabled (true) or only enabled (false) users.' })),
  after: t.Optional(
    t.Integer({ minimum: 0, maximum: ROW_ID_MAX, description: 'Cursor: the `nextAfter` of the previous page.' }),
  ),
  limit: t.Optional(t.Integer({ minimum: 1, maximum: 100, default: 50, description: 'Page size, 1-100.' })),
})

export const UserIdParams = t.Object({ id: UserId })

export const UserSessionParams = t.Object({
  id: UserId,
  sessionId: PublicSessionId,
})

export const UserStatusChanged = t.Object({
  id: t.Integer(),
  disabled: t.Boolean({ description: 'The state after the call.' }),
  user: t.Optional(AdminUser),
  changed: t.Boolean({ description: 'False when the user was already in that state.' }),
  propagated: t.Boolean({
    description:
      'True when Redis already reflects the change (sessions ended); false if the outbox relay will apply it within seconds.',
  }),
})

export const UserDeleted = t.Object({
  id: t.Integer(),
  username: t.Optional(t.String({ description: 'Shown to holders of user:read.' })),
  propagated: t.Boolean({ description: 'True when the sessions have already ended everywhere.' }),
})

export const EverySessionEnded = t.Object({
  users: t.Integer({ description: 'Users who had at least one session ended.' }),
  sessions: t.Integer({ description: 'Sessions ended.' }),
})
