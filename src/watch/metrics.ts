import {Counter, Gauge, Registry} from 'prom-client'
import type {WatchStatus} from './status-api.js'

const statuses = ['applied', 'partial', 'failed'] as const

/**
 * The Prometheus view of what /status says: one registry of mha's own (not prom-client's global one), refreshed
 * from the status document at each scrape, so the two never disagree. No reason texts: they stay in /status.
 * No process metrics: prom-client's defaults name gauges *_total, which promtool flags, and Prometheus's own
 * `up` already says whether the watch answers.
 */
export class WatchMetrics {
  readonly registry = new Registry()
  readonly #watcherUp: Gauge
  readonly #monitored: Gauge<'cluster'>
  readonly #masterUp: Gauge<'cluster'>
  readonly #replicasUp: Gauge<'cluster'>
  readonly #replicasConfigured: Gauge<'cluster'>
  readonly #lag: Gauge<'cluster' | 'server'>
  readonly #sincePing: Gauge<'cluster'>
  readonly #failovers: Counter<'cluster' | 'status'>
  readonly #lastDuration: Gauge<'cluster'>
  readonly #lastFailoverTime: Gauge<'cluster'>
  readonly #blocked: Gauge<'cluster'>
  readonly #proxyUp: Gauge<'cluster' | 'proxy'>
  readonly #routingOk: Gauge<'cluster' | 'proxy'>
  readonly #etcdUp: Gauge
  readonly #leader: Gauge<'cluster'>

  constructor() {
    const registers = [this.registry]
    this.#etcdUp = new Gauge({name: 'mha_etcd_up', help: 'With --etcd: 1 while this manager holds a valid etcd lease, 0 when etcd is unreachable or without quorum (no automatic failover then).', registers})
    this.#leader = new Gauge({name: 'mha_cluster_leader', help: 'With --etcd: 1 when this manager leads the cluster (pings, plans, applies), 0 when it follows another.', labelNames: ['cluster'], registers})
    this.#watcherUp = new Gauge({name: 'mha_watcher_up', help: 'Always 1 while this mha watch process serves metrics.', registers})
    this.#monitored = new Gauge({
      name: 'mha_cluster_monitored',
      help: '1 when mha watch can judge the master of the cluster; 0 when it cannot (no master found, servers unreachable at start, access refused, unreadable state): no automatic failover then. /status says why.',
      labelNames: ['cluster'],
      registers,
    })
    this.#masterUp = new Gauge({name: 'mha_master_up', help: '1 when the last ping of the master succeeded, 0 when it failed or no master is known.', labelNames: ['cluster'], registers})
    this.#replicasUp = new Gauge({
      name: 'mha_replicas_up',
      help: 'Replicas answering and replicating from the current master with IO and SQL threads running, at the last look (every 5 s).',
      labelNames: ['cluster'],
      registers,
    })
    this.#replicasConfigured = new Gauge({name: 'mha_replicas_configured', help: 'Servers of the cluster file other than the current master.', labelNames: ['cluster'], registers})
    this.#lag = new Gauge({
      name: 'mha_replica_lag_seconds',
      help: "Seconds_Behind_Master of a replica replicating from the current master, at the last look; absent when the replica does not report it.",
      labelNames: ['cluster', 'server'],
      registers,
    })
    this.#sincePing = new Gauge({
      name: 'mha_seconds_since_last_successful_ping',
      help: 'Seconds since the master last answered a ping from this watch; absent until it answered once.',
      labelNames: ['cluster'],
      registers,
    })
    this.#failovers = new Counter({
      name: 'mha_failovers_total',
      help: 'Automatic failovers this mha watch process ran to the end of apply, by the outcome of apply (applied, partial: replicas left out, failed).',
      labelNames: ['cluster', 'status'],
      registers,
    })
    this.#lastDuration = new Gauge({
      name: 'mha_last_failover_duration_seconds',
      help: 'How long the last failover took: from detection to the apply report for one run by this watch, else the apply time of the recorded one (watch state file). Absent when none is recorded.',
      labelNames: ['cluster'],
      registers,
    })
    this.#lastFailoverTime = new Gauge({
      name: 'mha_last_failover_timestamp_seconds',
      help: 'Unix time of the last recorded failover (by watch or mha apply), from the watch state file. Absent when none is recorded.',
      labelNames: ['cluster'],
      registers,
    })
    this.#blocked = new Gauge({
      name: 'mha_failover_blocked',
      help: '1 when anti-flapping blocks a new automatic failover: a failover within monitor.last_failover_minute not yet acknowledged with mha ack.',
      labelNames: ['cluster'],
      registers,
    })
    this.#proxyUp = new Gauge({name: 'mha_proxy_up', help: "With a routing section: 1 when the proxy's runtime API answered at the last look (every 5 s while the master is healthy), 0 when it did not.", labelNames: ['cluster', 'proxy'], registers})
    this.#routingOk = new Gauge({
      name: 'mha_proxy_routing_ok',
      help: "With a routing section: 1 when the proxy's writer backend sends writes to the master alone at the last look; 0 when it sends them elsewhere, to two servers or to none, lacks a server, or did not answer (an alarm: /status says which).",
      labelNames: ['cluster', 'proxy'],
      registers,
    })
  }

  get contentType(): string {
    return this.registry.contentType
  }

  /** The text exposition for one scrape, from one status document. */
  async render(status: WatchStatus, now = Date.now()): Promise<string> {
    const gauges = [this.#etcdUp, this.#leader, this.#monitored, this.#masterUp, this.#replicasUp, this.#replicasConfigured, this.#lag, this.#sincePing, this.#lastDuration, this.#lastFailoverTime, this.#blocked, this.#proxyUp, this.#routingOk]
    for (const g of gauges) g.reset()
    this.#failovers.reset()
    this.#watcherUp.set(1)
    if (status.etcd) this.#etcdUp.set(status.etcd.up ? 1 : 0)
    for (const c of status.clusters) {
      const cluster = c.name
      this.#monitored.set({cluster}, c.monitored ? 1 : 0)
      this.#masterUp.set({cluster}, c.master !== null && c.lastPingOk === true ? 1 : 0)
      if (c.replicas) {
        this.#replicasUp.set({cluster}, c.replicas.filter((r) => r.up).length)
        this.#replicasConfigured.set({cluster}, c.replicas.length)
        for (const r of c.replicas) if (r.lagSeconds !== null) this.#lag.set({cluster, server: r.name}, r.lagSeconds)
      }
      if (c.lastSuccessfulPingAt) this.#sincePing.set({cluster}, Math.max(0, (now - Date.parse(c.lastSuccessfulPingAt)) / 1000))
      for (const s of statuses) this.#failovers.inc({cluster, status: s}, c.failoversByThisWatch[s])
      if (c.lastFailoverDurationSeconds !== null) this.#lastDuration.set({cluster}, c.lastFailoverDurationSeconds)
      if (c.lastFailover) this.#lastFailoverTime.set({cluster}, Date.parse(c.lastFailover.at) / 1000)
      this.#blocked.set({cluster}, c.failoverBlocked ? 1 : 0)
      if (c.leadership) this.#leader.set({cluster}, c.leadership.role === 'leader' ? 1 : 0)
      for (const p of c.routing?.proxies ?? []) {
        this.#proxyUp.set({cluster, proxy: p.name}, p.reachable ? 1 : 0)
        this.#routingOk.set({cluster, proxy: p.name}, p.problems.length === 0 ? 1 : 0)
      }
    }
    return await this.registry.metrics()
  }
}
