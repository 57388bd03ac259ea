// The session store: everything that reads or writes sessions, their events and their keys in
// Redis (one Redis or a Cluster), with no dependency on the HTTP app, its context or the rate
// limiter. The app, the audit consumer, the CLI and the verifier other services import use it.

export * from './client'
export * from './events'
export * from './keys'
export * from './management'
export * from './partitions'
export * from './record'
export * from './sessions'
export * from './token'
