// Whether this instance is shutting down: set by the shutdown sequence, read by /readyz (503) and
// by every answer (`Connection: close`).

export interface Drain {
  /** True from the first shutdown signal on. */
  readonly draining: boolean
  /** Marks the instance as draining. Synchronous, so the very next /readyz answers 503. */
  begin(): void
}

export function createDrain(): Drain {
  let draining = false
  return {
    get draining() {
      return draining
    },
    begin() {
      draining = true
    },
  }
}
