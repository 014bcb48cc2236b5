import type {IKeyValue} from 'etcd3'

/** One leaders/<cluster> key as etcd holds it. */
export interface Leader {
  id: string
  createRevision: string
  lease: string
}

/** A change to one leaders/ key, as the watch on the prefix tells it. */
export interface LeaderEvent {
  type: 'put' | 'delete'
  kv: IKeyValue
}

interface Change {
  revision: bigint
  cluster: string
  leader: Leader | undefined
}

const leaderOf = (kv: IKeyValue): Leader => ({id: (JSON.parse(kv.value.toString('utf8')) as {id: string}).id, createRevision: kv.create_revision, lease: kv.lease})

/**
 * Who leads each cluster, as the leaders/ keys in etcd say: one full read, then the watch on the prefix from the
 * revision after it, so that a round costs nothing per cluster in etcd (a full read of 10,000 keys every round, by
 * every manager, was most of etcd's and the managers' work). A full read now and then (and after the watch was
 * lost) puts right whatever the watch may have missed; the changes the watch told since the last full read are
 * applied again over it when they are newer than its revision, so a read answered late never undoes them.
 */
export class LeaderView {
  readonly #prefix: string
  readonly #leaders = new Map<string, Leader>()
  /** Changes told by the watch since the last full read was applied. */
  #recent: Change[] = []
  /** The revision of the last full read applied: the watch's events up to it are in it already. */
  #readAt = -1n
  /** Called for each cluster whose leader key changed (came, went, or was replaced). */
  onChange: (cluster: string, before: Leader | undefined, after: Leader | undefined) => void = () => undefined

  constructor(prefix: string) {
    this.#prefix = prefix
  }

  get(cluster: string): Leader | undefined {
    return this.#leaders.get(cluster)
  }

  get size(): number {
    return this.#leaders.size
  }

  entries(): IterableIterator<[string, Leader]> {
    return this.#leaders.entries()
  }

  /** The watch's events, in etcd's order. */
  applyEvents(events: readonly LeaderEvent[]): void {
    for (const event of events) {
      const change = this.#change(event.kv, event.type === 'put')
      // An event still on its way when a newer full read was applied would undo what that read holds.
      if (!change || change.revision <= this.#readAt) continue
      this.#recent.push(change)
      this.#set(change.cluster, change.leader)
    }
  }

  /** A full read of the prefix at `revision`: the keys it holds, then the watch's newer changes over them. */
  applySnapshot(kvs: readonly IKeyValue[], revision: bigint): void {
    // Older than one applied already (answered late): what it says is known better.
    if (revision < this.#readAt) return
    const next = new Map<string, Leader>()
    for (const kv of kvs) {
      const change = this.#change(kv, true)
      if (change?.leader) next.set(change.cluster, change.leader)
    }
    for (const change of this.#recent) {
      if (change.revision <= revision) continue
      if (change.leader) next.set(change.cluster, change.leader)
      else next.delete(change.cluster)
    }
    this.#recent = []
    this.#readAt = revision
    for (const cluster of [...this.#leaders.keys()]) if (!next.has(cluster)) this.#set(cluster, undefined)
    for (const [cluster, leader] of next) this.#set(cluster, leader)
  }

  #change(kv: IKeyValue, put: boolean): Change | undefined {
    const key = kv.key.toString('utf8')
    if (!key.startsWith(this.#prefix)) return undefined
    let leader: Leader | undefined
    if (put) {
      try {
        leader = leaderOf(kv)
      } catch {
        return undefined // A value that does not parse names no leader mha knows of.
      }
    }
    return {revision: BigInt(kv.mod_revision), cluster: key.slice(this.#prefix.length), leader}
  }

  #set(cluster: string, leader: Leader | undefined): void {
    const before = this.#leaders.get(cluster)
    if (before?.createRevision === leader?.createRevision && before?.id === leader?.id && before?.lease === leader?.lease) return
    if (leader) this.#leaders.set(cluster, leader)
    else this.#leaders.delete(cluster)
    this.onChange(cluster, before, leader)
  }
}
