import type {CheckReport} from '../analysis/check.js'
import {renderTable} from './table.js'

export function renderCheck(report: CheckReport): string {
  const yesNo = (v: boolean | null, yes: string, no: string) => (v === null ? '-' : v ? yes : no)
  const table = renderTable(
    ['server', 'address', 'role', 'replication', 'lag', 'read_only', 'log_bin', 'ssh'],
    report.servers.map((s) => [
      s.name,
      s.address,
      s.role,
      s.source ? `from ${s.source} io=${s.ioThread ?? '-'} sql=${s.sqlThread ?? '-'}` : s.role === 'down' ? 'unreachable' : '-',
      s.secondsBehind === null ? '-' : `${s.secondsBehind}s`,
      yesNo(s.readOnly, 'ON', 'OFF'),
      yesNo(s.logBin, 'ON', 'OFF'),
      s.ssh,
    ]),
  )
  const lines = [`cluster ${report.cluster}: master ${report.master ?? '(none)'}, ${report.replicationMode === 'gtid' ? 'GTID' : 'binlog file/position'} replication`, '', table, '']
  if (report.proxies.length > 0) {
    const proxies = renderTable(
      ['proxy', 'runtime API', 'backend', 'reachable', 'servers', 'writer'],
      report.proxies.map((p) => [
        p.name,
        p.runtimeApi,
        p.backend,
        p.reachable ? 'yes' : 'no',
        p.missing === null ? '-' : p.missing.length === 0 ? 'all' : `missing ${p.missing.join(', ')}`,
        p.writers === null ? '-' : p.writers.length === 0 ? '(none)' : p.writers.join(', '),
      ]),
    )
    lines.push(proxies, '')
  }
  for (const f of report.findings) lines.push(`${f.severity.toUpperCase().padEnd(7)} ${f.message}`)
  if (report.findings.length > 0) lines.push('')
  const errors = report.findings.filter((f) => f.severity === 'error').length
  const warnings = report.findings.filter((f) => f.severity === 'warning').length
  // Warnings do not stop a failover, and the verdict says so rather than counting them as problems.
  const alsoWarnings = warnings === 0 ? '' : ` (and ${warnings} warning${warnings === 1 ? '' : 's'} above, which would not)`
  lines.push(
    report.verdict === 'master_dead'
      ? `verdict: MASTER DEAD, a failover is possible now: mha plan --cluster ${report.cluster}${warnings === 0 ? '' : ` (${warnings} warning${warnings === 1 ? '' : 's'} above)`}`
      : report.failoverPossible
        ? `verdict: OK, a failover is possible now${warnings === 0 ? '' : ` (${warnings} warning${warnings === 1 ? '' : 's'} above)`}`
        : `verdict: NOT OK, ${errors} problem${errors === 1 ? '' : 's'} would stop a failover${alsoWarnings}`,
  )
  return lines.join('\n')
}
