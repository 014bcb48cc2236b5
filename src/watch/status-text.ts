import type {WatchView} from './presence.js'

export type AutomaticFailover = 'on' | 'off' | 'blocked' | 'unknown'

/** Whether a dead master of this cluster would be failed over now, from the watch (or its absence) and anti-flapping. */
export function automaticFailoverOf(view: WatchView, blockedByState: boolean): AutomaticFailover {
  if (!view.running) return 'off'
  if ('status' in view) return !view.status.monitored ? 'off' : view.status.failoverBlocked ? 'blocked' : 'on'
  if (blockedByState) return 'blocked'
  return 'error' in view ? 'unknown' : 'on'
}

/** The status table's last column. */
export function automaticFailoverCell(view: WatchView, blockedByState: boolean): string {
  const state = automaticFailoverOf(view, blockedByState)
  if (!view.running) return 'OFF: no mha watch'
  if (state === 'off') return `OFF: watch pid ${view.pid} cannot monitor`
  if (state === 'blocked') return 'blocked until mha ack'
  if (state === 'unknown') return `watch pid ${view.pid}, view unreadable`
  return `on (watch pid ${view.pid})`
}

const ago = (iso: string | null, now: number) => (iso === null ? 'never' : `${Math.max(0, (now - Date.parse(iso)) / 1000).toFixed(1)} s ago`)

/** One line under the table: what the watch sees, or that none runs. */
export function watchLine(cluster: string, view: WatchView, now = Date.now()): string {
  if (!view.running) return `no mha watch is running for ${cluster}: automatic failover is OFF`
  const who = `mha watch pid ${view.pid} (since ${view.startedAt})`
  if (view.listen === null) return `${cluster}: ${who} watches it; it runs without --listen, so its view cannot be shown`
  if ('error' in view) return `${cluster}: ${who} watches it, but ${view.error}`
  const s = view.status
  if (!s.monitored) return `${cluster}: ${who} cannot monitor it: ${s.notMonitoredReason ?? 'unknown reason'}; automatic failover is OFF`
  const verdict = s.verdict.state === 'healthy' ? 'healthy' : `${s.verdict.state}: ${s.verdict.reason ?? ''}`
  const replicas =
    s.replicas === null
      ? 'replicas not looked at yet'
      : `replicas up ${s.replicas.filter((r) => r.up).length}/${s.replicas.length}` +
        (s.replicas.length ? ': ' + s.replicas.map((r) => (r.up ? `${r.name} (lag ${r.lagSeconds ?? '?'} s)` : `${r.name} ${r.problem ?? 'down'}`)).join(', ') : '')
  return `${cluster}: ${who} sees master ${s.master ?? '-'} ${verdict}, last successful ping ${ago(s.lastSuccessfulPingAt, now)}; ${replicas}${s.failoverBlockedReason ? `; failover blocked: ${s.failoverBlockedReason}` : ''}`
}
