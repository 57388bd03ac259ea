// Who may act on whom: the authorization rules that go beyond a route's permission, in one place,
// for the HTTP routes and any other caller alike.

import type { Db, Tx } from '../../db/client'
import { AppError } from '../../lib/errors'
import type { Actor } from '../auth/client'
import { hasPermission, type Permission } from '../permissions/catalogue'
import { countOtherActiveSuperusers, grantsOf, superusersAmong } from './repository'

/**
 * The admin CLI's operator (operatorActor) is bound by none of the rules between users below, only
 * by the invariants (assertAnotherSuperuser): whoever runs it holds the database's credentials and
 * could change any row directly, so refusing would protect nothing and only hide the change from
 * the audit trail.
 */
export const isOperator = (actor: Pick<Actor, 'operator'>): boolean => actor.operator !== undefined

/** Only a superuser confers superuser; anyone else may pass on only what they hold themselves. */
export function assertMayDelegate(actorPermissions: readonly string[], wanted: Permission): void {
  const allowed =
    wanted === 'superuser' ? actorPermissions.includes('superuser') : hasPermission(actorPermissions, wanted)
  if (!allowed) throw new AppError('cannot_delegate', { params: { permission: wanted } })
}

/** assertMayDelegate for an actor whose grants are read from PostgreSQL, the source of truth, not its session. */
export async function assertActorMayDelegate(db: Db | Tx, actor: Actor, wanted: Permission): Promise<void> {
  if (isOperator(actor)) return
  assertMayDelegate(await grantsOf(db, actor.id), wanted)
}

/**
 * What is done to another user's account or sessions. A superuser's account (its permissions, its
 * state, its existence) is changed only by itself, so one compromised administrator cannot lock
 * out another; its sessions are seen and ended only by a superuser or itself, so a session:revoke
 * holder can neither keep administrators logged out nor learn where they log in from.
 */
export type ActionOnUser = 'change_account' | 'manage_sessions'

export async function assertMayActOn(
  db: Db | Tx,
  input: { actor: Actor; targetId: number; action: ActionOnUser },
): Promise<void> {
  const { actor, targetId, action } = input
  const actorId = actor.id
  if (isOperator(actor) || actorId === targetId) return
  const supers = await superusersAmong(db, [actorId, targetId])
  if (!supers.has(targetId)) return
  if (action === 'manage_sessions' && supers.has(actorId)) return
  throw new AppError('protected_superuser')
}

/** The last superuser cannot lose the role: there would be nobody left to administer the system. */
export async function assertAnotherSuperuser(db: Db | Tx, losingUserId: number): Promise<void> {
  if ((await countOtherActiveSuperusers(db, losingUserId)) === 0) throw new AppError('last_superuser')
}

/**
 * Whether an answer may show user records (permissions, state, dates): to holders of user:read only,
 * on write routes too, so that holding user:manage or user:assign reveals no more than it did.
 */
export function mayReadUsers(actorPermissions: readonly string[]): boolean {
  return hasPermission(actorPermissions, 'user:read')
}
