// The permission catalogue, readable by anyone.

import { Elysia, t } from 'elysia'
import { errors } from '../../lib/responses'
import { PERMISSION_NAMES, PERMISSIONS } from './catalogue'

const catalogue = PERMISSION_NAMES.map((name) => ({ name, description: PERMISSIONS[name] }))

export const permissionRoutes = new Elysia({ name: 'tessera.routes.permissions', tags: ['permissions'] }).get(
  '/permissions',
  () => catalogue,
  {
    response: { 200: t.Array(t.Object({ name: t.String(), description: t.String() })), ...errors() },
    detail: { summary: 'List permissions', description: 'Every permission that can be granted. Public.' },
  },
)
