// Redis connections tuned to fail fast (an outage must become a 503 in seconds, not a hung
// request), to one Redis or to a Redis Cluster, and the connections of their own that blocking
// stream reads need, one per partition.

import Redis, { Cluster, type ClusterNode, type RedisOptions } from 'ioredis'
import { slotOf } from './partitions'

/** Either kind of client: every store command works on both. */
export type RedisClient = Redis | Cluster

/** Where Redis is: one URL, or a Cluster's seed nodes (with the URL's credentials and TLS). */
export interface RedisTarget {
  url: string
  clusterNodes?: readonly string[]
  /** Certificates for a rediss:// URL; without them the system's CAs verify the server. */
  tls?: RedisTls
}

/** PEM text: the CA bundle that signed the server's certificate, and a client certificate and key. */
export interface RedisTls {
  ca?: string
  cert?: string
  key?: string
}

const FAIL_FAST: RedisOptions = {
  connectTimeout: 3_000,
  commandTimeout: 3_000,
  maxRetriesPerRequest: 1,
}

export function createRedis(url: string, overrides: RedisOptions = {}): Redis {
  return new Redis(url, {
    lazyConnect: true,
    // Commands issued while disconnected fail at once instead of queueing behind a reconnect.
    enableOfflineQueue: false,
    ...FAIL_FAST,
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 1_000),
    // Commands issued in the same tick (concurrent requests) share one write to the socket.
    enableAutoPipelining: true,
    // Session reads are already batched into one MGET per partition and turn (batched-get.ts).
    autoPipeliningIgnoredCommands: ['mget'],
    ...overrides,
  })
}

/**
 * TLS options for a rediss:// URL (none for redis://): the certificate is always verified, against
 * `tls.ca` or the system's CAs, and so is the host name or IP address the client connects to.
 */
function tlsOptions(url: string, tls: RedisTls = {}): RedisOptions {
  return new URL(url).protocol === 'rediss:' ? { tls: { ...tls } } : {}
}

/** Credentials and TLS from a redis:// or rediss:// URL, for every node of a cluster. */
export function connectionOptions(url: string, tls?: RedisTls): RedisOptions {
  const parsed = new URL(url)
  return {
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...tlsOptions(url, tls),
  }
}

/** `host:port` or a redis:// URL, as a seed node. */
function seedNode(entry: string): ClusterNode {
  const url = new URL(entry.includes('://') ? entry : `redis://${entry}`)
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 6379) }
}

/** The URL whose credentials and TLS a cluster uses: its first seed node written as one, else REDIS_URL. */
export const clusterAuthUrl = (nodes: readonly string[], url: string) => (nodes[0]?.includes('://') ? nodes[0] : url)

export function createCluster(nodes: readonly string[], url: string, tls?: RedisTls): Cluster {
  const auth = connectionOptions(clusterAuthUrl(nodes, url), tls)
  return new Cluster(nodes.map(seedNode), {
    lazyConnect: true,
    enableOfflineQueue: false,
    // ioredis groups auto-pipelined commands by their first argument's slot, which for a script is
    // its key count, not a key: a script would land in another slot's pipeline and be refused.
    // Session reads are batched per partition anyway (batched-get.ts).
    enableAutoPipelining: false,
    // A failover moves slots: commands that meet MOVED or CLUSTERDOWN are retried shortly, and
    // fail (a 503) only when the cluster stays down.
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    maxRedirections: 16,
    slotsRefreshTimeout: 2_000,
    clusterRetryStrategy: (attempt) => Math.min(100 * 2 ** attempt, 2_000),
    redisOptions: { ...FAIL_FAST, ...auth },
  })
}

export function createRedisClient(target: RedisTarget): RedisClient {
  return target.clusterNodes?.length
    ? createCluster(target.clusterNodes, target.url, target.tls)
    : createRedis(target.url, tlsOptions(target.url, target.tls))
}

/**
 * Connects and waits until Redis answers, or throws. A cluster must also be healthy and cover all
 * 16384 slots: a partly covered one would fail some users and not others.
 */
export async function connectRedis(redis: RedisClient): Promise<void> {
  if (redis.status === 'wait') await redis.connect()
  await redis.ping()
  if (redis instanceof Cluster) {
    const info = String(await redis.cluster('INFO'))
    const field = (name: string) => new RegExp(`^${name}:(\\S+)`, 'm').exec(info)?.[1]
    if (field('cluster_state') !== 'ok' || field('cluster_slots_ok') !== '16384') {
      throw new Error(
        `cluster not fully covered (cluster_state:${field('cluster_state')}, cluster_slots_ok:${field('cluster_slots_ok')})`,
      )
    }
  }
}

/** The servers a SCAN over every key must visit: the Redis itself, or every master of a cluster. */
export function scanTargets(redis: RedisClient): Redis[] {
  return redis instanceof Cluster ? redis.nodes('master') : [redis]
}

// Blocking reads fail at once when their connection drops, so the reader notices; new ones wait for
// the reconnect instead of failing in a tight loop.
const BLOCKING: RedisOptions = { commandTimeout: undefined, enableOfflineQueue: true, maxRetriesPerRequest: 0 }

/**
 * A connection of its own for blocking reads (XREAD BLOCK) on one key, which would stall shared
 * traffic. On a cluster it goes straight to the master that serves the key's slot now; after a
 * failover or a reshard the reader's next error leads it to call this again, which asks the cluster
 * where the slot went.
 */
export async function blockingConnectionFor(redis: RedisClient, key: string): Promise<Redis> {
  if (!(redis instanceof Cluster)) return redis.duplicate(BLOCKING)
  await new Promise<void>((resolve) => redis.refreshSlotsCache(() => resolve()))
  const owner = redis.slots[slotOf(key)]?.[0]
  const node = owner === undefined ? undefined : redis.nodes('master').find((n) => nodeKey(n) === owner)
  if (!node) throw new Error(`no master serves the slot of ${key} right now`)
  return node.duplicate({ ...BLOCKING, lazyConnect: false })
}

const nodeKey = (node: Redis) => `${node.options.host}:${node.options.port}`

/**
 * One partition's connection for blocking reads, opened on first use and reopened (towards the
 * slot's current master) after `reset`, which a reader calls on any error. `onClose` hears of every
 * drop at once, before the reader's pending command fails.
 */
export class PartitionConnection {
  #connection: Redis | undefined
  #opening: Promise<Redis> | undefined

  constructor(
    private readonly redis: RedisClient,
    /** A key of the partition: its stream. */
    readonly key: string,
    private readonly onClose: () => void = () => {},
  ) {}

  get(): Promise<Redis> {
    if (this.#connection) return Promise.resolve(this.#connection)
    this.#opening ??= blockingConnectionFor(this.redis, this.key).then(
      (connection) => {
        connection.on('error', () => {})
        connection.on('close', this.onClose)
        this.#connection = connection
        this.#opening = undefined
        return connection
      },
      (error) => {
        this.#opening = undefined
        throw error
      },
    )
    return this.#opening
  }

  /** Drops the connection; the next `get` opens a new one, to wherever the slot is served now. */
  reset(): void {
    const connection = this.#connection
    this.#connection = undefined
    if (connection) {
      connection.off('close', this.onClose)
      connection.disconnect()
    }
  }
}
