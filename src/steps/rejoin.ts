import {bindAddressOption} from '../util/executables.js'
import {replaceDurably} from '../util/durable.js'
import {existsSync, closeSync} from 'node:fs'
import {basename} from 'node:path'
import {compareCoordinates, formatCoordinates} from '../binlog/coordinates.js'
import {endpointOf} from '../inspect/inspect.js'
import type {Step} from '../plan/types.js'
import {APPLY_MAX_PACKET, clientOptionFile, findExecutable, raiseApplySettings, readApplySettings, restoreSettings, runBinlogPipeline, unnamedFile} from '../recovery/apply.js'
import {redact} from '../util/secret.js'
import {isCoordinates, readOnlyState} from './common.js'
import type {StepHandler} from './types.js'
import {savedFile} from './recovery.js'
import {workFileIn} from './work-files.js'

type Of<T extends Step['type']> = Extract<Step, {type: T}>

/** Rejoin: the former master takes no more writes (read_only; on MySQL super_read_only too, as the dialect says). */
export const setReadOnly: StepHandler<Of<'set_read_only'>> = {
  async check(step, ctx) {
    return (await readOnlyState(ctx, step.server)).readOnly ? {done: true, reason: `${step.server} is already read_only`} : {done: false}
  },
  async act(step, ctx) {
    const conn = await ctx.sql(step.server)
    for (const sql of (await ctx.dialect(step.server)).setReadOnly(true)) await conn.execute(sql)
    return undefined
  },
  async verify(step, ctx) {
    if (!(await readOnlyState(ctx, step.server)).readOnly) throw new Error(`${step.server} is still writable (read_only=0)`)
  },
}

const doneMark = (file: string) => `${file}.flashback.json`

/**
 * Rejoin: rewinds exactly the saved range of the server's own binlog (its extra transactions): mariadb-binlog
 * --flashback of the saved file, piped to the client as in apply_logs (login through a descriptor, max_allowed_packet
 * 1 GiB for the duration), in a session with sql_log_bin=0 so that the rewind is not logged as new transactions of the server. A rewind cannot tell
 * afterwards how far it got: an interrupted one is not run again (rebuild instead). With GTIDs the binlog still
 * names the rewound transactions; it is reset (RESET MASTER) so that replication from the master can start
 * from the position the server now matches.
 */
export const flashbackBinlog: StepHandler<Of<'flashback_binlog'>> = {
  check(step, ctx) {
    const file = workFileIn(ctx.workDir, ctx.output(step.params.saved.fromStep, step.params.saved.output))
    if (file !== null && existsSync(doneMark(file))) return Promise.resolve({done: true, reason: `${step.params.transactions} transaction(s) were rewound by an earlier run (${basename(doneMark(file))})`})
    return Promise.resolve({done: false})
  },
  async act(step, ctx) {
    const p = step.params
    const where = `${step.server}`
    if (ctx.attempted(step.id)) throw new Error(`${where}: an earlier attempt to rewind its extra transactions did not finish and may have rewound part of them; rebuild ${where} from ${ctx.plan.decision.newMaster ?? 'the master'}`)
    const file = savedFile(ctx, p.saved)
    const end = ctx.output(p.saved.fromStep, 'end')
    if (!isCoordinates(end) || compareCoordinates(end, p.end) !== 0)
      throw new Error(`${where}: its binlog after ${formatCoordinates(p.from)} now ends at ${isCoordinates(end) ? formatCoordinates(end) : '?'}, not ${formatCoordinates(p.end)} as planned (it took writes since the plan); nothing was rewound: plan the rejoin again`)
    const mysqlbinlog = findExecutable(['mariadb-binlog'])
    const client = findExecutable(['mariadb', 'mysql'])
    if (!mysqlbinlog || !client) throw new Error(`mariadb-binlog and the mariadb client are needed on this host to rewind ${where}'s extra transactions`)
    const endpoint = endpointOf(ctx.cluster, ctx.server(step.server))
    const conn = await ctx.sql(step.server)
    // --flashback prints each transaction reversed as one BINLOG statement: a large one exceeds the usual 16 MiB.
    const saved = await readApplySettings(conn, ctx.timeoutMs)
    const credentials = unnamedFile(ctx.workDir, clientOptionFile(endpoint))
    try {
      await raiseApplySettings(conn, saved, ctx.timeoutMs)
      const outcome = await runBinlogPipeline(
        mysqlbinlog,
        ['--no-defaults', '--flashback', file],
        client,
        [
          '--defaults-file=/dev/fd/3',
          // Not logged: the rewind must not reach the binlog as new transactions of this server.
          '--init-command=SET SESSION sql_log_bin=0',
          '--protocol=TCP',
          ...bindAddressOption(client, endpoint.localAddress),
          `--host=${endpoint.host}`,
          `--port=${endpoint.port}`,
          '--batch',
          '--binary-mode',
          `--max-allowed-packet=${APPLY_MAX_PACKET}`,
        ],
        ctx.timeoutMs,
        credentials,
      )
      const problem = outcome.timedOut ? `no progress for ${ctx.timeoutMs} ms` : (outcome.clientFailure ?? outcome.binlogFailure)
      if (problem) throw new Error(redact(`${where}: rewinding ${basename(file)} failed: ${problem}; rebuild ${where} from ${ctx.plan.decision.newMaster ?? 'the master'}`, [endpoint.password]))
    } finally {
      closeSync(credentials)
      await restoreSettings(conn, endpoint, saved, ctx.timeoutMs)
    }
    if (p.resetBinlog) await (await ctx.sql(step.server)).execute('RESET MASTER')
    // On disk before the step is journaled done: after a crash the mark, not a second rewind, tells it was done.
    replaceDurably(doneMark(file), JSON.stringify({transactions: p.transactions, gtids: p.gtids, from: p.from, end: p.end, at: new Date().toISOString()}) + '\n')
    ctx.note(`${where}: ${p.transactions} extra transaction(s) rewound; they are kept in ${file}`)
    return {rewound: p.transactions, file: basename(file)}
  },
  async verify(step, ctx) {
    if (!step.params.resetBinlog) return
    const row = await (await ctx.sql(step.server)).queryOne('SELECT @@global.gtid_binlog_pos AS pos')
    const pos = typeof row?.pos === 'string' ? row.pos : ''
    if (pos !== '') throw new Error(`${step.server}: gtid_binlog_pos is still ${pos} after RESET MASTER`)
  },
}
