import type {Coordinator} from '../coord/coordinator.js'
import {complaintPauseMs} from './complaints.js'
import type {Logger} from './log.js'

/**
 * etcd away is said at once (by the session) and again with a growing pause while it lasts, and its return is
 * said too: never silent. Returns what stops the looking.
 */
export function sayEtcdHealth(coord: Coordinator, log: Logger): () => void {
  let downSince = 0
  let nextLog = 0
  const timer = setInterval(() => {
    const now = Date.now()
    if (coord.session.valid()) {
      if (downSince) log('*', 'etcd up', `etcd answers again after ${Math.round((now - downSince) / 1000)} s: automatic failover is back`)
      downSince = 0
      return
    }
    if (!downSince) downSince = nextLog = now
    if (now < nextLog) return
    nextLog = now + complaintPauseMs(downSince, now)
    log('*', 'etcd down', `etcd unreachable or without quorum for ${Math.round((now - downSince) / 1000)} s (${coord.session.problem ?? '?'}): no automatic failover for any cluster of this manager`)
  }, 500)
  return () => clearInterval(timer)
}
