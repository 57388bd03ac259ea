// The permission catalogue. Seeded into PostgreSQL at boot; routes name these, never ad-hoc strings.
//
// Append only, and at most 31 entries: sessions in Redis store permissions as a bit mask over this
// order (src/modules/sessions/record.ts), so moving or removing an entry would change the
// permissions of live sessions.

export const PERMISSIONS = {
  superuser: 'Holds every permission; only a superuser can grant it.',
  'user:assign': 'Grant and revoke permissions the holder has.',
  'user:read': 'List and read user accounts.',
  'user:manage': 'Disable, enable and delete user accounts.',
  'session:revoke': "List and end other users' sessions.",
  'audit:read': 'Read the audit trail.',
} as const

export type Permission = keyof typeof PERMISSIONS

export const PERMISSION_NAMES = Object.keys(PERMISSIONS) as Permission[]

export function isPermission(name: string): name is Permission {
  return Object.hasOwn(PERMISSIONS, name)
}

/** The superuser holds every permission without separate grants. */
export function hasPermission(held: readonly string[], wanted: Permission): boolean {
  return held.includes(wanted) || held.includes('superuser')
}
