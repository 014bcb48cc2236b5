import {createHash} from 'node:crypto'

/**
 * Rendezvous (highest random weight) order of the managers for one cluster: every manager computes the same
 * order from the same list, each cluster prefers a different manager, and when a manager leaves only its
 * clusters move. No coordination beyond knowing who is alive.
 */
export function rendezvousOrder(cluster: string, managers: readonly string[]): string[] {
  const weight = (id: string) => createHash('sha256').update(`${cluster}\n${id}`).digest().readBigUInt64BE(0)
  return [...managers].map((id) => ({id, w: weight(id)})).sort((a, b) => (a.w === b.w ? (a.id < b.id ? -1 : 1) : a.w > b.w ? -1 : 1)).map((x) => x.id)
}

/** How long a manager lets a vacant leadership wait before it campaigns: the preferred one at once, the next after a pause. */
export function campaignDelayMs(rank: number, stepMs: number): number {
  return rank <= 0 ? 0 : rank * stepMs
}
