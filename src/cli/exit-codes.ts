/**
 * The one table of mha's exit codes. Commands exit through these names; `--help` and the README show
 * this table, so scripts and people read the same contract.
 */
export const ExitCode = {
  /** Done, or nothing to do (a noop plan, a possible failover, a finished apply). */
  ok: 0,
  /** The command failed: a runtime error, a bad cluster file, a refused or inconsistent plan. */
  error: 1,
  /** A result that needs attention: the plan has changes, a failover is not possible now. */
  attention: 2,
  /** apply was partial: the new master takes writes, some replicas were left out (MHA's code). */
  partial: 10,
  /** Usage error (sysexits EX_USAGE): unknown command or flag, bad flag value, missing argument, conflicting flags. */
  usage: 64,
} as const

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode]

/** What each code means in general; a command's own meaning (below) replaces the general one in its help. */
export const exitCodeMeanings: Record<ExitCodeValue, string> = {
  0: 'ok, or nothing to do',
  1: 'error: runtime failure, bad cluster file, refused or inconsistent plan',
  2: 'a result that needs attention (plan: it has changes; check: a failover is not possible now)',
  10: 'apply was partial: the new master takes writes, some replicas were left out',
  64: 'usage error: unknown command or flag, bad flag value, missing argument, conflicting flags',
}

/** Per command (oclif id), the codes it can return and what they mean there. Every command also returns 1 and 64. */
export const commandExitCodes: Record<string, Partial<Record<ExitCodeValue, string>>> = {
  check: {0: 'a failover is possible now', 2: 'a failover is not possible now; the reasons are listed'},
  plan: {0: 'no changes (a noop plan, printed, not archived)', 2: 'the plan has changes (failover, switchover, rejoin, rebuild, remove)'},
  show: {0: 'the plan is consistent with the cluster file', 1: 'the plan disagrees with the cluster file, or cannot be read'},
  apply: {0: 'applied, or nothing left to do', 1: 'refused, or failed with no new master taking writes', 10: 'the new master takes writes but some replicas were left out (their recovery failed, or the plan leaves them out); the report names each'},
  switchover: {0: 'switched: the new master takes writes, the old one replicates from it', 1: 'refused, not approved, or failed (the report says which side takes writes)', 10: 'the new master takes writes but some replicas were left out'},
  watch: {0: 'stopped by SIGTERM or SIGINT after finishing what was under way', 1: 'no cluster can be monitored, another mha watch already watches one of its clusters on this host (without etcd), or an error'},
  ack: {0: 'acknowledged (or already acknowledged)', 1: 'no failover to acknowledge, or an error'},
  status: {0: 'status shown (whatever the health of the clusters)'},
  'config:import-mha': {0: 'the cluster file was written'},
  'sandbox:up': {0: 'the sandbox is up'},
  'sandbox:down': {0: 'stopped and removed, or nothing to do'},
  'sandbox:status': {0: 'status shown'},
  'sandbox:kill-master': {0: "the master's mariadbd was killed"},
  'sandbox:start-host': {0: "the host's mariadbd answers SQL"},
  'sandbox:load': {0: 'every acknowledged write is on the current master', 2: 'acknowledged writes are missing on the current master'},
  'sandbox:add-host': {0: 'the host was added'},
  'sandbox:etcd:up': {0: 'every etcd member is healthy'},
  'sandbox:etcd:down': {0: 'stopped and removed, or nothing to do'},
  'sandbox:etcd:status': {0: 'status shown (whatever the health of the members)'},
}

/** The codes a command can return, with their meaning for that command (general meaning where it has none of its own). */
export function exitCodesOf(commandId: string | undefined): [ExitCodeValue, string][] {
  const own = commandId === undefined ? undefined : commandExitCodes[commandId]
  const codes = own ? ([...new Set<ExitCodeValue>([...(Object.keys(own).map(Number) as ExitCodeValue[]), ExitCode.error, ExitCode.usage])] as ExitCodeValue[]) : (Object.values(ExitCode) as ExitCodeValue[])
  return codes.sort((a, b) => a - b).map((code) => [code, own?.[code] ?? exitCodeMeanings[code]])
}

/** The table as help text: one code per line. */
export function exitCodesText(commandId: string | undefined): string {
  return exitCodesOf(commandId)
    .map(([code, meaning]) => `${String(code).padEnd(3)} ${meaning}`)
    .join('\n')
}
