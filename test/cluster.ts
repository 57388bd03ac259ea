// A test-owned Redis Cluster on loopback ports: masters with one replica each, made with
// `redis-server --cluster-enabled yes` and `redis-cli --cluster create`, stopped by the PIDs it
// started; optionally with a password and TLS only (client, bus and replication links). The shared
// Redis on 6379 is never touched.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Subprocess } from 'bun'
import Redis from 'ioredis'
import type { Certificates } from './certificates'
import { stopProcess, waitFor } from './processes'
import { freePort } from './services'

export interface ClusterNode {
  port: number
  address: string
  proc: Subprocess
}

export interface TestCluster {
  /** `127.0.0.1:<port>` of every node, for REDIS_CLUSTER_NODES. */
  readonly seeds: string[]
  readonly nodes: ClusterNode[]
  /** Cluster-enabled nodes started but not joined: for a test to add (`redis-cli --cluster add-node`). */
  readonly spares: ClusterNode[]
  /** Waits until every member knows the node on `port` and it knows the cluster. */
  joined(port: number, timeoutMs?: number): Promise<void>
  /** A plain connection to one node (closed by `stop`). */
  connect(port: number): Redis
  /** The ports of the masters now, and of each one's replicas. */
  topology(): Promise<{ master: number; replicas: number[]; slots: [number, number][] }[]>
  /** Waits until every node reports cluster_state:ok and the masters cover every slot. */
  healthy(timeoutMs?: number): Promise<void>
  stop(): Promise<void>
}

export interface ClusterOptions {
  masters?: number
  replicas?: number
  spare?: number
  /** requirepass and masterauth of every node. */
  password?: string
  /** TLS only: every port, the cluster bus and replication; clients are not asked for a certificate. */
  tls?: Certificates
}

export async function startRedisCluster({
  masters = 3,
  replicas = 1,
  spare = 0,
  password,
  tls,
}: ClusterOptions = {}): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-cluster-'))
  const nodes: ClusterNode[] = []
  const spares: ClusterNode[] = []
  const clients: Redis[] = []
  const ca = tls ? readFileSync(tls.ca, 'utf8') : undefined
  const connect = (port: number) => {
    const client = new Redis({
      host: '127.0.0.1',
      port,
      lazyConnect: false,
      maxRetriesPerRequest: 1,
      password,
      ...(ca ? { tls: { ca } } : {}),
    })
    client.on('error', () => {})
    clients.push(client)
    return client
  }
  const cluster: TestCluster = {
    get seeds() {
      return nodes.map((node) => node.address)
    },
    nodes,
    spares,
    connect,
    async joined(port, timeoutMs = 30_000) {
      await waitFor(
        async () => {
          const probe = connect(port)
          try {
            const known = String(await probe.cluster('NODES'))
              .trim()
              .split('\n').length
            return known >= nodes.length + 1 && String(await probe.cluster('INFO')).includes('cluster_state:ok')
          } finally {
            probe.disconnect()
          }
        },
        timeoutMs,
        `node ${port} to join the cluster`,
      )
      const node = spares.find((n) => n.port === port)
      if (node) {
        spares.splice(spares.indexOf(node), 1)
        nodes.push(node)
      }
    },
    async topology() {
      // Any node still running knows the whole topology.
      const alive = nodes.find((node) => node.proc.exitCode === null && node.proc.signalCode === null)
      const probe = connect(alive?.port ?? 0)
      const lines = String(await probe.cluster('NODES'))
        .trim()
        .split('\n')
      probe.disconnect()
      const byId = new Map<string, { port: number; master: string | null; slots: [number, number][] }>()
      for (const line of lines) {
        const [id = '', address = '', flags = '', masterId = '', , , , , ...slots] = line.split(' ')
        if (flags.includes('fail')) continue
        byId.set(id, {
          port: Number(address.split('@')[0]?.split(':')[1]),
          master: flags.includes('slave') ? masterId : null,
          slots: slots
            .filter((s) => /^\d/.test(s))
            .map((s) => {
              const [from = 0, to = from] = s.split('-').map(Number)
              return [from, to]
            }),
        })
      }
      return [...byId.entries()]
        .filter(([, node]) => node.master === null)
        .map(([id, node]) => ({
          master: node.port,
          slots: node.slots,
          replicas: [...byId.values()].filter((n) => n.master === id).map((n) => n.port),
        }))
    },
    async healthy(timeoutMs = 30_000) {
      await waitFor(
        async () => {
          for (const node of nodes.filter((n) => n.proc.exitCode === null && n.proc.signalCode === null)) {
            const probe = connect(node.port)
            try {
              const info = String(await probe.cluster('INFO'))
              if (!info.includes('cluster_state:ok') || !info.includes('cluster_slots_ok:16384')) return false
            } finally {
              probe.disconnect()
            }
          }
          return true
        },
        timeoutMs,
        'the test cluster to be healthy',
      )
    },
    async stop() {
      for (const client of clients) client.disconnect()
      await Promise.all([...nodes, ...spares].map((node) => stopProcess(node.proc)))
      rmSync(dir, { recursive: true, force: true })
    },
  }

  try {
    for (let i = 0; i < masters * (1 + replicas) + spare; i++) {
      const port = freePort()
      const secured = [
        ...(password ? ['--requirepass', password, '--masterauth', password] : []),
        ...(tls
          ? ['--tls-cert-file', tls.serverCert, '--tls-key-file', tls.serverKey, '--tls-ca-cert-file', tls.ca]
          : []),
        ...(tls ? ['--tls-auth-clients', 'no', '--tls-cluster', 'yes', '--tls-replication', 'yes'] : []),
      ]
      const proc = Bun.spawn(
        [
          'redis-server',
          ...(tls ? ['--port', '0', '--tls-port', String(port)] : ['--port', String(port)]),
          ...secured,
          '--bind',
          '127.0.0.1',
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          `nodes-${port}.conf`,
          '--cluster-node-timeout',
          '2000',
          '--dir',
          dir,
          '--save',
          '',
          '--appendonly',
          'no',
        ],
        { stdout: 'ignore', stderr: 'ignore' },
      )
      ;(i < masters * (1 + replicas) ? nodes : spares).push({ port, address: `127.0.0.1:${port}`, proc })
    }
    for (const node of [...nodes, ...spares]) {
      await waitFor(
        async () => {
          const probe = connect(node.port)
          try {
            return (await probe.ping()) === 'PONG'
          } finally {
            probe.disconnect()
          }
        },
        10_000,
        `redis-server on ${node.port}`,
      )
    }
    const create = Bun.spawn(
      [
        'redis-cli',
        ...(password ? ['-a', password, '--no-auth-warning'] : []),
        ...(tls ? ['--tls', '--cacert', tls.ca] : []),
        '--cluster',
        'create',
        ...cluster.seeds,
        '--cluster-replicas',
        String(replicas),
        '--cluster-yes',
      ],
      { stdout: 'pipe', stderr: 'pipe' },
    )
    const [out, err, code] = await Promise.all([
      new Response(create.stdout).text(),
      new Response(create.stderr).text(),
      create.exited,
    ])
    if (code !== 0) throw new Error(`redis-cli --cluster create failed (${code}): ${out}${err}`)
    await cluster.healthy()
    // cluster_state:ok comes before every node has heard of every CLUSTER REPLICATE: a node may
    // still list a replica-to-be as a master without slots. Ready means every node sees the roles,
    // and every replica has its master's data.
    await waitFor(
      async () => {
        for (const node of nodes) {
          const probe = connect(node.port)
          try {
            const flags = String(await probe.cluster('NODES'))
              .trim()
              .split('\n')
              .map((line) => line.split(' ')[2] ?? '')
            const count = (role: string) => flags.filter((f) => f.split(',').includes(role)).length
            if (count('master') !== masters || count('slave') !== masters * replicas) return false
            // A replica still loading its first copy of its master is not yet one to fail over to.
            const replication = String(await probe.info('replication'))
            if (replication.includes('role:slave') && !replication.includes('master_link_status:up')) return false
          } finally {
            probe.disconnect()
          }
        }
        return true
      },
      30_000,
      'every node of the test cluster to agree on masters and replicas',
    )
    return cluster
  } catch (error) {
    await cluster.stop()
    throw error
  }
}
