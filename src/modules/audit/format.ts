// One readable line per event, for an operator watching `bun run audit:tail`.

import type { AuthEvent } from '../../store'

const short = (hash: string) =>
  hash
    .split(',')
    .map((h) => `${h.slice(0, 8)}…`)
    .join(',')

export function formatEvent(event: AuthEvent, id: string): string {
  const parts = [new Date(event.at).toISOString(), event.type.padEnd(21)]
  const fields = event as unknown as Record<string, unknown>
  if (event.subjectId) parts.push(`user=${event.subjectId}`)
  if (event.actorId && event.actorId !== event.subjectId) parts.push(`by=${event.actorId}`)
  if (event.operator) parts.push(`by=${JSON.stringify(event.operator)}`)
  for (const key of ['username', 'permission', 'reason'] as const) {
    if (fields[key] !== undefined) parts.push(`${key}=${JSON.stringify(fields[key])}`)
  }
  if (event.sessionHash) parts.push(`session=${short(event.sessionHash)}`)
  if (event.ip) parts.push(`ip=${event.ip}`)
  if (event.userAgent) parts.push(`ua=${JSON.stringify(event.userAgent.slice(0, 60))}`)
  parts.push(`instance=${event.instance}`, `id=${id}`)
  return parts.join(' ')
}
