// What a request carries through every await without being passed along: its id (so any log line
// written while it is served names it) and when it arrived (for the duration histogram). Set by the
// app's outermost wrap (fetch-guard.ts), read by the logger's mixin.

import { AsyncLocalStorage } from 'node:async_hooks'

export interface RequestScope {
  readonly requestId: string
  /** performance.now() when the app received the request. */
  readonly startedAt: number
}

export const requestScope = new AsyncLocalStorage<RequestScope>()

/** The id of the request being served, if any. */
export function currentRequestId(): string | undefined {
  return requestScope.getStore()?.requestId
}
