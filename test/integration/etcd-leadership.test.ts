import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Etcd3} from 'etcd3'
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest'
import {Coordinator} from '../../src/coord/coordinator.js'
import {EtcdStore} from '../../src/store/etcd.js'
import {rendezvousOrder} from '../../src/coord/ranking.js'
import {etcdEndpoints, startEtcdCluster, stopEtcdCluster} from '../../src/sandbox/etcd.js'
import {waitFor} from '../../src/sandbox/processes.js'
import type * as SessionModule from '../../src/coord/session.js'
import {root} from './harness.js'

/**
 * Leadership of thousands of clusters shared by several managers, on a real etcd (one member on 127.0.0.105): the
 * coordinators of three managers in this process, each with its own lease. What a deployment of 10,000 clusters
 * relies on: every cluster led by exactly one manager, the one rendezvous hashing prefers; campaigns and hand-overs
 * in a few transactions, not one per cluster; rounds that cost etcd nothing per cluster; each cluster's loop told
 * when its role changes (it sleeps meanwhile); never two managers leading one cluster, even while clusters move.
 */
const address = '127.0.0.105'
const etcdDir = join(mkdtempSync(join(tmpdir(), 'mha-it-etcdlead-')), 'etcd')
const clusters = Array.from({length: 3000}, (_, i) => `c${i}`)
const ids = ['w1', 'w2', 'w3']
let endpoint = ''
let client: Etcd3 | undefined
let coords: Coordinator[] = []
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

beforeAll(async () => {
  await startEtcdCluster({dir: etcdDir, addresses: [address]})
  endpoint = etcdEndpoints(etcdDir)
  client = new Etcd3({hosts: endpoint})
}, 60_000)

afterEach(async () => {
  await Promise.all(coords.map((c) => c.stop()))
  coords = []
})

afterAll(async () => {
  client?.close()
  await stopEtcdCluster(etcdDir)
  rmSync(join(etcdDir, '..'), {recursive: true, force: true})
})

/** etcd's own counters: transactions and reads handled, and bytes sent to clients. */
async function etcdCounters(): Promise<{txns: number; ranges: number; sentBytes: number}> {
  const text = await (await fetch(`${endpoint}/metrics`)).text()
  const value = (line: string | undefined) => Number(line?.slice(line.lastIndexOf(' ') + 1) ?? 0)
  const lines = text.split('\n')
  const handled = (method: string) => value(lines.find((l) => l.startsWith('grpc_server_handled_total{') && l.includes(`grpc_method="${method}"`) && l.includes('grpc_code="OK"')))
  return {txns: handled('Txn'), ranges: handled('Range'), sentBytes: value(lines.find((l) => l.startsWith('etcd_network_client_grpc_sent_bytes_total ')))}
}

async function leadersInEtcd(prefix: string): Promise<Map<string, string>> {
  const keys = await client!.getAll().prefix(`${prefix}/leaders/`).strings()
  return new Map(Object.entries(keys).map(([key, value]) => [key.slice(`${prefix}/leaders/`.length), (JSON.parse(value) as {id: string}).id]))
}

interface Started {
  coord: Coordinator
  /** Clusters whose role change this coordinator told. */
  told: Set<string>
}

async function start(prefix: string, id: string, watched: readonly string[] = clusters): Promise<Started> {
  const coord = new Coordinator({endpoints: [endpoint], prefix, leaseTtlSeconds: 2, tls: undefined, auth: undefined, id}, watched)
  const told = new Set<string>()
  coord.onRoleChange = (cluster) => told.add(cluster)
  coords.push(coord)
  await coord.start()
  expect(coord.session.valid()).toBe(true)
  return {coord, told}
}

/** Throws when a cluster is led by two of the coordinators at once, as each of them believes. */
function atMostOneLeader(of: readonly Coordinator[]): void {
  for (const cluster of clusters) {
    const leading = of.filter((c) => c.leads(cluster)).map((c) => c.settings.id)
    if (leading.length > 1) throw new Error(`${cluster} led by ${leading.join(' and ')} at once`)
  }
}

/** Every cluster led in etcd by the manager rendezvous hashing prefers among `alive`, and that manager alone believes it leads it. */
async function settledOn(prefix: string, alive: readonly Coordinator[]): Promise<void> {
  const names = alive.map((c) => c.settings.id)
  await waitFor(`every cluster led by the manager it prefers among ${names.join(', ')}`, 60_000, async () => {
    atMostOneLeader(coords)
    const leaders = await leadersInEtcd(prefix)
    return clusters.every((cluster) => {
      const preferred = rendezvousOrder(cluster, names)[0]!
      return leaders.get(cluster) === preferred && alive.every((c) => c.leads(cluster) === (c.settings.id === preferred))
    })
  }, 50)
}

describe('leadership of 3000 clusters over three managers on a real etcd', () => {
  it('leads every cluster once, as rendezvous hashing prefers, in a few transactions and rounds that cost etcd nothing per cluster', async () => {
    const before = await etcdCounters()
    const started = await Promise.all(ids.map((id) => start('/spread', id)))
    await settledOn('/spread', started.map((s) => s.coord))
    const settled = await etcdCounters()
    // Campaigns and hand-overs 100 to a transaction: one per cluster would be over 3000.
    expect(settled.txns - before.txns).toBeLessThan(300)
    // Each loop was told of every cluster it leads.
    for (const s of started) for (const cluster of clusters) if (s.coord.leads(cluster)) expect(s.told.has(cluster)).toBe(true)
    // Settled rounds (about 12 in 5 s for each manager) read the managers, not the 3000 leader keys (over 200 KB each time).
    await sleep(5000)
    const after = await etcdCounters()
    expect(after.sentBytes - settled.sentBytes).toBeLessThan(200_000)
    expect(after.txns - settled.txns).toBe(0)
  })

  it('moves a stopped manager\'s clusters to the others at once, tells each, and never lets two lead one cluster', async () => {
    const started = await Promise.all(ids.map((id) => start('/move', id)))
    await settledOn('/move', started.map((s) => s.coord))
    const [gone, ...stay] = started as [Started, Started, Started]
    const moving = clusters.filter((cluster) => gone.coord.leads(cluster))
    for (const s of stay) s.told.clear()
    let checking = true
    const checks = (async () => {
      while (checking) {
        atMostOneLeader(coords)
        await sleep(5)
      }
    })()
    // Stopped: its lease is revoked, its keys go with it.
    await gone.coord.stop()
    coords = coords.filter((c) => c !== gone.coord)
    await settledOn('/move', stay.map((s) => s.coord))
    checking = false
    await checks
    for (const cluster of moving) expect(stay.some((s) => s.coord.leads(cluster) && s.told.has(cluster))).toBe(true)
  })

  it('counts as its own a leadership etcd shows under its lease, whose campaign answer was lost', async () => {
    // w2 is alive (it watches no cluster) and preferred for `cluster`: w1 would campaign for it only after a lease TTL.
    await start('/adopt', 'w2', [])
    const cluster = clusters.find((c) => rendezvousOrder(c, ['w1', 'w2'])[0] === 'w2')!
    const w1 = await start('/adopt', 'w1', [cluster])
    // Another client writes the key a campaign of w1 would have: etcd committed it, w1 never heard the answer.
    const key = `/adopt/leaders/${cluster}`
    const written = await client!.if(key, 'Create', '==', 0).then(client!.put(key).value(JSON.stringify({id: 'w1', since: new Date().toISOString()})).lease(w1.coord.session.leaseId!)).commit()
    expect(written.succeeded).toBe(true)
    await waitFor(`w1 to count ${cluster} as its own`, 10_000, () => w1.coord.leads(cluster), 20)
    expect(w1.told.has(cluster)).toBe(true)
    // Its own, not a campaign of its own meanwhile: the key etcd holds is the one written above.
    const [kv] = (await client!.get(key).exec()).kvs
    expect(kv?.create_revision).toBe(written.header.revision)
  })

  it('reads a thousand clusters\' states and failover records asked for at once in a few calls to etcd, each its own', async () => {
    // A manager that becomes the leader of a thousand clusters at once: each cluster's loop reads its state and its failover record.
    const w1 = await start('/reads', 'w1', [])
    const names = clusters.slice(0, 1000)
    for (const [i, name] of names.entries()) if (i % 3 === 0) await client!.put(`/reads/state/${name}`).value(JSON.stringify({lastFailover: null, acknowledged: i % 2 === 0})).exec()
    const before = await etcdCounters()
    const stores = names.map((name) => new EtcdStore(w1.coord, '/nonexistent', name))
    const [states, records] = await Promise.all([Promise.all(stores.map((s) => s.sharedState())), Promise.all(stores.map((s) => s.failoverRecord()))])
    const after = await etcdCounters()
    names.forEach((_, i) => expect(states[i]).toEqual(i % 3 === 0 ? {lastFailover: null, acknowledged: i % 2 === 0} : null))
    expect(records.every((r) => r === null)).toBe(true)
    // 2000 reads, 100 to a transaction: one call each would be 2000.
    expect(after.txns + after.ranges - before.txns - before.ranges).toBeLessThan(50)
  })

  describe('a lease kept in a thread of its own (mha watch), TTL 2 s', () => {
    /** The built session: its keeper thread runs dist/src/coord/lease-worker.js, as in mha watch. */
    const built = async () => (await import(join(root, 'dist/src/coord/session.js'))) as typeof SessionModule
    const busyFor = (ms: number) => {
      const until = Date.now() + ms
      while (Date.now() < until) {
        // The main thread's event loop does not run: 10,000 clusters' work, or a stuck loop.
      }
    }
    const timeToLive = async (lease: string) => Number((await client!.leaseClient.leaseTimeToLive({ID: lease})).TTL)

    it('stays valid, in etcd too, while the main thread is busy for longer than the TTL', async () => {
      const session = new (await built()).EtcdSession({endpoints: [endpoint], prefix: '/own', leaseTtlSeconds: 2, tls: undefined, auth: undefined, id: 'w1'}, {ownThread: true})
      try {
        await session.start()
        const lease = session.leaseId!
        expect(lease).toBeDefined()
        // 2.5 s without a turn of the event loop: a keeper in the main thread sends nothing meanwhile, and etcd ends its
        // lease after 2 s; this one keeps it alive until the loop has been silent for two TTLs.
        busyFor(2500)
        expect(session.leaseId).toBe(lease)
        expect(await timeToLive(lease)).toBeGreaterThanOrEqual(0)
      } finally {
        await session.stop()
      }
    })

    it('is left to expire when the main thread\'s event loop is stuck for good, and fences it', async () => {
      const session = new (await built()).EtcdSession({endpoints: [endpoint], prefix: '/own', leaseTtlSeconds: 2, tls: undefined, auth: undefined, id: 'w1'}, {ownThread: true})
      try {
        await session.start()
        const lease = session.leaseId!
        // Stuck for 7 s: the keeper stops once the loop has not run for two TTLs (4 s), and etcd ends the lease a TTL later.
        busyFor(7000)
        expect(session.valid()).toBe(false)
        expect(() => session.assertValid('a step', lease)).toThrow(/no longer valid/)
        expect(await timeToLive(lease)).toBe(-1)
        // Its loop running again, it takes a new lease: another, never the old one.
        await waitFor('a new lease', 10_000, () => session.valid(), 50)
        expect(session.leaseId).not.toBe(lease)
      } finally {
        await session.stop()
      }
    })
  })
})
