import type {ServerConfig} from '../config/types.js'
import {proxyFindings, type ProxyRow} from '../analysis/routing.js'
import {observeProxies} from '../routing/observe.js'
import {oneLine} from '../util/errors.js'
import type {ClusterContext} from './context.js'

/** How often a healthy cluster's proxies are looked at (writes routed elsewhere than the master are an alarm). */
const routingLookEveryMs = 5_000

/** What each proxy's writer backend said at the last look, and what is wrong with it (empty: it routes writes to the master alone). */
export interface RoutingView {
  checkedAt: number
  proxies: (ProxyRow & {problems: string[]})[]
}

/**
 * Every few seconds while the master is healthy, each proxy's writer backend is read (beside the pings, never
 * delaying them): writes routed to another server than the master, to two servers or to none are an alarm, said
 * when it starts and when it ends, and shown by /status and the metrics. Nothing is changed here: moving
 * writes is a plan's step, reviewed and verified.
 */
export class RoutingLook {
  readonly #ctx: ClusterContext
  readonly #currentMaster: () => ServerConfig | undefined
  /** Where the last look's view goes, for /status and the metrics (null: no proxies, or not looked at yet). */
  readonly #shown: {routing: RoutingView | null}
  #looking: Promise<void> | undefined
  #lastLook = 0
  #lastSaid = ''
  #stopping = false

  constructor(ctx: ClusterContext, currentMaster: () => ServerConfig | undefined, shown: {routing: RoutingView | null}) {
    this.#ctx = ctx
    this.#currentMaster = currentMaster
    this.#shown = shown
  }

  check(master: ServerConfig | undefined): void {
    const ctx = this.#ctx
    if (!master || ctx.cluster.proxies.length === 0 || this.#looking || this.#stopping || ctx.failingOver) return
    if (Date.now() - this.#lastLook < routingLookEveryMs) return
    this.#lastLook = Date.now()
    this.#looking = this.#look(master)
      .catch((error: unknown) => ctx.say('error', `looking at the proxies: ${oneLine(error)}`))
      .finally(() => (this.#looking = undefined))
  }

  async stop(): Promise<void> {
    this.#stopping = true
    await this.#looking
  }

  async #look(master: ServerConfig): Promise<void> {
    const ctx = this.#ctx
    const observed = await observeProxies(ctx.cluster, {ssh: ctx.pool.run})
    // The topology moved meanwhile (a failover): what the proxies said is judged at the next look.
    if (this.#currentMaster() !== master || ctx.failingOver) return
    const judged = observed.map((o) => {
      const {rows, findings} = proxyFindings(ctx.cluster, [o], {name: master.name, dead: false})
      return {row: {...rows[0]!, problems: findings.map((f) => f.message)}, errors: findings.filter((f) => f.severity === 'error').map((f) => f.message), warnings: findings.filter((f) => f.severity !== 'error').map((f) => f.message)}
    })
    this.#shown.routing = {checkedAt: Date.now(), proxies: judged.map((j) => j.row)}
    const errors = judged.flatMap((j) => j.errors)
    const said = [...errors, ...judged.flatMap((j) => j.warnings)].join('; ')
    if (said === this.#lastSaid) return
    if (errors.length > 0) ctx.say('routing alarm', said)
    else if (said !== '') ctx.say('routing', said)
    else ctx.say('routing ok', `every proxy sends writes to ${master.name} alone`)
    this.#lastSaid = said
  }
}
