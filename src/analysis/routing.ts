import type {ClusterConfig} from '../config/types.js'
import type {ProxyObservation} from '../routing/observe.js'

/** One proxy in `mha check`: reachable or not, its backend against the cluster file, who takes writes through it. */
export interface ProxyRow {
  name: string
  runtimeApi: string
  backend: string
  reachable: boolean
  /** mha names of the servers the cluster file names that the backend lacks (null: the backend was not read). */
  missing: string[] | null
  /** mha names (or the backend's own names, for servers the cluster file does not know) enabled for new connections. */
  writers: string[] | null
}

export interface ProxyFinding {
  severity: 'error' | 'warning' | 'info'
  code: string
  server: string | null
  message: string
}

/**
 * Per proxy: can mha reach it, does its writer backend hold every server the cluster file names (mha moves
 * writes by those names), and is exactly one writer enabled, the master. A proxy that cannot be reached is a
 * warning (a failover still promotes; its routing step is finished by running apply again once it answers); a
 * backend that lacks a server, or writes routed elsewhere than the live master, are errors.
 */
export function proxyFindings(cluster: ClusterConfig, observations: ProxyObservation[], master: {name: string; dead: boolean} | null): {rows: ProxyRow[]; findings: ProxyFinding[]} {
  const findings: ProxyFinding[] = []
  const rows = observations.map((o): ProxyRow => {
    const proxy = cluster.proxies.find((p) => p.name === o.name)!
    const where = `proxy ${o.name} (runtime API ${o.runtimeApi})`
    if (!o.servers) {
      findings.push(
        o.reachable
          ? {severity: 'error', code: 'proxy_backend_unreadable', server: null, message: `${o.error}; fix routing.haproxy "${o.name}" writer_backend in ${cluster.file} or the proxy's stats socket (level admin)`}
          : {severity: 'warning', code: 'proxy_unreachable', server: null, message: `${o.error}: a failover still promotes, but cannot move this proxy's writes until it answers (then run mha apply on the plan again)`},
      )
      return {name: o.name, runtimeApi: o.runtimeApi, backend: o.backend, reachable: o.reachable, missing: null, writers: null}
    }
    const byOwnName = new Map(Object.entries(proxy.servers).map(([mha, own]) => [own, mha]))
    const present = new Set(o.servers.map((s) => s.name))
    const missing = Object.entries(proxy.servers).filter(([, own]) => !present.has(own)).map(([mha]) => mha)
    for (const name of missing)
      findings.push({severity: 'error', code: 'proxy_server_missing', server: name, message: `${where}: backend ${o.backend} has no server "${proxy.servers[name]}" for ${name}; add it to the backend, or map ${name} to its name there under servers in ${cluster.file}`})
    const writers = o.servers.filter((s) => s.enabled).map((s) => byOwnName.get(s.name) ?? s.name)
    const list = writers.join(', ')
    if (master === null) {
      // No master to compare with: said by the topology findings already.
    } else if (writers.length === 0) {
      if (!master.dead)
        findings.push({severity: 'error', code: 'proxy_no_writer', server: master.name, message: `${where}: no server of backend ${o.backend} is enabled: writes through the proxy fail; enable the master (set server ${o.backend}/${proxy.servers[master.name]} state ready)`})
    } else if (writers.length > 1) {
      findings.push({severity: 'error', code: 'proxy_two_writers', server: null, message: `${where}: backend ${o.backend} sends new connections to ${list}: writes can reach more than one server; keep only ${master.name} enabled, the others in maint`})
    } else if (writers[0] !== master.name) {
      if (!master.dead)
        findings.push({severity: 'error', code: 'proxy_wrong_writer', server: writers[0]!, message: `${where}: backend ${o.backend} sends writes to ${list}, not to the master ${master.name}; put ${master.name} in (state ready) and ${list} in maint`})
    }
    return {name: o.name, runtimeApi: o.runtimeApi, backend: o.backend, reachable: true, missing, writers}
  })
  return {rows, findings}
}
