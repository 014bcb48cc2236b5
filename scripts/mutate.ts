// Mutation run (npm run mutate): each listed mutant breaks one rule of the switchover, config or planner code;
// the unit tests that guard that rule must fail ("killed"). One mutant at a time, in place: the file is
// restored from the copy read before, in finally and on SIGINT/SIGTERM. Exits 1 if a mutant survives or
// its original snippet is not found exactly once (the list cannot rot silently). Not part of npm test: slow.
import {spawn} from 'node:child_process'
import {readFileSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

interface Mutant {
  file: string
  original: string
  replacement: string
  /** The rule the mutant breaks. */
  rule: string
  tests: string[]
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const switchoverTests = ['test/unit/switchover.test.ts', 'test/unit/golden.test.ts']
const configTests = ['test/unit/config.test.ts', 'test/unit/planner-edges.test.ts']
const plannerTests = ['test/unit/planner-edges.test.ts', 'test/unit/candidates.test.ts', 'test/unit/planner-failover.test.ts', 'test/unit/golden.test.ts']
const switchover = (original: string, replacement: string, rule: string): Mutant => ({file: 'src/plan/switchover.ts', original, replacement, rule, tests: switchoverTests})
const config = (original: string, replacement: string, rule: string): Mutant => ({file: 'src/config/load.ts', original, replacement, rule, tests: configTests})
const planner = (original: string, replacement: string, rule: string): Mutant => ({file: 'src/plan/planner.ts', original, replacement, rule, tests: plannerTests})
const candidates = (original: string, replacement: string, rule: string): Mutant => ({file: 'src/plan/candidates.ts', original, replacement, rule, tests: plannerTests})
const watchTests = ['test/unit/judge.test.ts', 'test/unit/watch-phases.test.ts']
const watch = (phase: string, original: string, replacement: string, rule: string): Mutant => ({file: `src/watch/${phase}.ts`, original, replacement, rule, tests: watchTests})

const mutants: Mutant[] = [
  switchover("s.ioThread !== 'running' || ", '', 'switchover: a replica whose IO thread is not running refuses (dropped condition)'),
  switchover(" || s.sqlThread !== 'running'", '', 'switchover: a replica whose SQL thread is not running refuses (dropped condition)'),
  switchover('if (errant) refusals.push', 'if (errant && false) refusals.push', 'switchover: errant transactions on a replica refuse (dropped condition)'),
  switchover('lag === null || lag > cluster', 'lag > cluster', 'switchover: an unknown target lag refuses (dropped condition)'),
  switchover('lag > cluster.switchover.maxLagSeconds)', 'lag >= cluster.switchover.maxLagSeconds)', 'switchover: lag exactly max_lag_seconds is allowed (off-by-one at the limit)'),
  switchover('lag > cluster.switchover.maxLagSeconds)', 'lag > cluster.switchover.maxLagSeconds + 1)', 'switchover: lag one second over max_lag_seconds refuses (off-by-one at the limit)'),
  switchover('q.seconds >= cluster.switchover.runningUpdatesLimit', 'q.seconds > cluster.switchover.runningUpdatesLimit', 'switchover: a write running exactly running_updates_limit refuses (inverted comparison)'),
  switchover('&& !isRead(q.statement)', '&& isRead(q.statement)', 'switchover: writes block, reads do not (inverted condition)'),
  switchover('&& !isRead(q.statement)', '', 'switchover: long reads never block (dropped condition)'),
  switchover('(select|show|explain|describe|desc|with)', '(show|explain|describe|desc|with)', 'switchover: a SELECT is a read (dropped alternative)'),
  switchover("      if (c.eligible) c.reason = c.chosen ? 'chosen: named with --to'", "      if (false) c.reason = c.chosen ? 'chosen: named with --to'", 'switchover --to: no other candidate still reads "chosen"'),
  switchover('deadMaster: null,\n      oldMaster: master.name', 'deadMaster: master.name,\n      oldMaster: master.name', 'switchover: the live master is the old master, never a dead one'),
  config('connectTimeoutMs: (options.connectTimeoutSeconds ?? ssh.connect_timeout) * 1000', 'connectTimeoutMs: options.connectTimeoutSeconds ?? ssh.connect_timeout', 'config: ssh.connect_timeout seconds -> ms (wrong unit)'),
  config('pingIntervalMs: raw.monitor.ping_interval * 1000', 'pingIntervalMs: raw.monitor.ping_interval * 100', 'config: monitor.ping_interval seconds -> ms (wrong unit)'),
  config('connectTimeoutMs: raw.monitor.connect_timeout * 1000', 'connectTimeoutMs: raw.monitor.connect_timeout', 'config: monitor.connect_timeout seconds -> ms (wrong unit)'),
  config('waitTimeoutMs: raw.failover.wait_timeout * 1000', 'waitTimeoutMs: raw.failover.wait_timeout * 60_000', 'config: failover.wait_timeout seconds -> ms (wrong unit)'),
  config('lastFailoverMinute: raw.monitor.last_failover_minute', 'lastFailoverMinute: raw.monitor.last_failover_minute * 60', 'config: last_failover_minute stays minutes (wrong unit)'),
  config('sshUser: own.user ?? s.ssh_user ?? options.user', 'sshUser: own.user ?? options.user', "config: a server's ssh_user wins over ssh.user (dropped override)"),
  config("  checkUnique(servers, (s) => s.name, ['name'], at)\n", '', 'config: two servers with one name are refused (dropped check)'),
  config('(s) => `${s.ip}:${s.port}`', '(s) => `${s.ip}`', 'config/planner: two servers on one host at different ports are distinct'),
  candidates('rule(\'replication_delay\', behind <= limit', 'rule(\'replication_delay\', behind < limit', 'candidates: lag exactly max_lag_bytes is allowed (off-by-one at the limit)'),
  candidates('rule(\'replication_delay\', behind <= limit', 'rule(\'replication_delay\', behind <= limit + 1', 'candidates: one byte over max_lag_bytes is rejected (off-by-one at the limit)'),
  candidates("(r) => priority && isLatest(r)]", '(r) => isLatest(r)]', 'candidates: latest_priority false ignores the newest data without candidates (dropped condition)'),
  candidates('chosen = replicas.find((r) => good(r) && test(r))', 'chosen = replicas.findLast((r) => good(r) && test(r))', 'candidates: a tie is broken by config order'),
  planner("const lostAfter = tail.kind === 'lost' ? usableRead", "const lostAfter = tail.kind === 'lost' ? maxRead", 'planner: the loss starts at the best kept replica, not a left-out latest one'),
  planner("? `events after ${formatCoordinates(usableRead)} in ${dead.name}'s binlog are lost: ${tail.why}`", "? `events after ${formatCoordinates(maxRead)} in ${dead.name}'s binlog are lost: ${tail.why}`", 'planner: the loss statement names the best kept position'),
  planner('const usable = replicas.filter((r) => !excluded.has(r.server.name))', 'const usable = replicas', 'planner: an excluded replica gives no data (dropped filter)'),
  planner('if (dataLoss.none) dataLoss.statement = `none: ', 'if (true) dataLoss.statement = `none: ', 'planner: a statement says "none:" only when nothing is lost'),
  planner('const target = {host: newMaster.server.hostname, port: newMaster.server.port,', 'const target = {host: newMaster.server.hostname, port: r.server.port,', "planner: a replica is re-pointed to the new master's port, not its own"),
  watch('judge', 'return previous + (look.retried ? 2 : 1)', 'return previous + 1', 'watch judge: a silent ping and its failed retry are two failures'),
  watch('judge', "if (m.ok || m.kind === 'auth' || m.kind === 'too_many_connections') return 0", 'if (m.ok) return 0', 'watch judge: access denied and too many connections mean alive (no failure counted)'),
  watch('judge', 'if (streaming || secondaryCheck) observation.secondOpinion', 'if (secondaryCheck) observation.secondOpinion', 'watch judge: the other routes are asked when a replica still streams'),
  watch('judge', 'if (master.ok || failures < failuresBeforeDead) return observation', 'if (master.ok) return observation', 'watch judge: nobody else is asked below failures_before_dead'),
  watch('monitor', 'lastFailedPingMs < promptAnswerMs ? promptRetryMs : 250', '250', 'watch monitor: a prompt refusal is tried again at once'),
  watch('plan-failover', '...(observation.sshReachable === false ?', '...(observation.sshReachable !== true ?', "watch plan: the dead master's SSH is skipped only when its host did not answer"),
  watch('plan-failover', "finding.observation.replicas.some((r) => r.ioThread === 'running')", "finding.observation.replicas.some((r) => r.ioThread !== null)", 'watch plan: a death is forced only over replicas that still showed an IO thread'),
  watch('act', 'if (coord && !coord.leads(cluster))', 'if (coord && false)', 'watch act: with etcd only the leader fails over'),
  watch('follow', "report.status === 'partial' ? 'done, replicas left out'", "report.status === 'partial' ? 'done'", 'watch follow: a partial failover says replicas were left out'),
  watch('judge', 'if (m.silence === true && lagMs >= overloadedLagMs) return previous', 'if (m.silence === true && lagMs > overloadedLagMs) return previous', 'watch judge: a silence while the process was overloadedLagMs late is not counted (off-by-one at the limit)'),
  watch('judge', 'if (m.silence === true && lagMs >= overloadedLagMs) return previous', 'if (lagMs >= overloadedLagMs) return previous', 'watch judge: a refusal read late still counts'),
  watch('judge', '  if (lag >= overloadedLagMs)\n', '  if (false)\n', 'watch judge: nothing seen while the process was late declares a master dead'),
  watch('contact', 'Math.min(askedAt, answeredAt) - this.#seen', 'answeredAt - this.#seen', "watch judge: a replica's silence runs to when it was asked, not to when its answer was read"),
  watch('judge', 'if (noRoute && observation.sshReachable === true)', 'if (false)', 'watch judge: no route in time but the host answers SSH and replicas stream is not a dead master'),
  watch('monitor', 'return registered === undefined || id === undefined || !registered.has(id)', 'return registered === undefined || (id !== undefined && !registered.has(id))', 'watch monitor: a follower whose server id is not known is looked at itself'),
]

// `npm run mutate -- watch`: only the mutants whose rule starts with that word.
const only = process.argv[2]
const selected = only ? mutants.filter((m) => m.rule.startsWith(only)) : mutants

const originals = new Map<string, string>()
const restoreAll = () => {
  for (const [file, text] of originals) writeFileSync(join(root, file), text)
}
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.on(signal, () => {
    restoreAll()
    console.error(`\n${signal}: every mutated file restored`)
    process.exit(130)
  })

function vitest(files: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn('npx', ['vitest', 'run', '--project', 'unit', ...files], {cwd: root, stdio: 'ignore'})
    child.on('exit', (code) => resolve(code ?? 1))
  })
}

type Outcome = 'killed' | 'SURVIVED' | 'NOT FOUND'
const results: {mutant: Mutant; outcome: Outcome}[] = []
const allTests = [...new Set(selected.flatMap((m) => m.tests))]
if ((await vitest(allTests)) !== 0) {
  console.error(`the unmutated code fails ${allTests.join(' ')}: fix that first`)
  process.exit(1)
}
for (const mutant of selected) {
  const path = join(root, mutant.file)
  const text = readFileSync(path, 'utf8')
  const found = text.split(mutant.original).length - 1
  if (found !== 1) {
    results.push({mutant, outcome: 'NOT FOUND'})
    console.log(`NOT FOUND  ${mutant.file}: ${mutant.rule} (the snippet occurs ${found} times)`)
    continue
  }
  originals.set(mutant.file, text)
  try {
    writeFileSync(path, text.replace(mutant.original, () => mutant.replacement))
    const outcome: Outcome = (await vitest(mutant.tests)) === 0 ? 'SURVIVED' : 'killed'
    results.push({mutant, outcome})
    console.log(`${outcome.padEnd(9)}  ${mutant.file}: ${mutant.rule}`)
  } finally {
    writeFileSync(path, text)
    originals.delete(mutant.file)
  }
}

const width = Math.max(...results.map((r) => r.mutant.file.length))
console.log(`\n${'outcome'.padEnd(9)}  ${'file'.padEnd(width)}  rule`)
for (const {mutant, outcome} of results) console.log(`${outcome.padEnd(9)}  ${mutant.file.padEnd(width)}  ${mutant.rule}`)
const killed = results.filter((r) => r.outcome === 'killed').length
console.log(`\n${killed} of ${selected.length} mutants killed`)
process.exit(killed === selected.length ? 0 : 1)
