import {Socket} from 'node:net'
import {dirname} from 'node:path'
import {PassThrough} from 'node:stream'
import {endpointOf} from '../inspect/inspect.js'
import {withConnection} from '../inspect/mysql.js'
import {clientOptionFile} from '../recovery/apply.js'
import type {Step} from '../plan/types.js'
import {shellQuote} from '../remote/ssh.js'
import {oneLine} from '../util/errors.js'
import {withOutOfService} from '../store/cluster-state.js'
import {replicaStatus, waitReplicating, waitUntil} from './common.js'
import type {StepContext, StepHandler} from './types.js'

type Of<T extends Step['type']> = Extract<Step, {type: T}>

/** What the copy says about where it ends, read from the files mariadb-backup writes into it. */
export interface CopyPosition {
  source: string
  /** The source's own binlog coordinates and GTID position (xtrabackup_binlog_info). */
  binlog: {file: string; pos: number; gtid: string} | null
  /** The source replica's executed master coordinates (xtrabackup_slave_info, file/position mode). */
  master: {file: string; pos: number} | null
  /** The source replica's gtid_slave_pos (xtrabackup_slave_info, GTID mode). */
  gtidSlavePos: string | null
}

const GTID_POS = /^(\d+-\d+-\d+)?(,\d+-\d+-\d+)*$/

/** Parse xtrabackup_binlog_info and xtrabackup_slave_info (mariadb-backup 10.x names, or mariadb_backup_* in 11.x). */
export function parseCopyPosition(source: string, binlogInfo: string, slaveInfo: string): CopyPosition {
  const b = binlogInfo.trim().split(/\s+/)
  const binlog = b[0] && /^\d+$/.test(b[1] ?? '') ? {file: b[0], pos: Number(b[1]), gtid: b[2] ?? ''} : null
  const file = /MASTER_LOG_FILE\s*=\s*'([^']+)'/i.exec(slaveInfo)
  const pos = /MASTER_LOG_POS\s*=\s*(\d+)/i.exec(slaveInfo)
  const gtid = /gtid_slave_pos\s*=\s*'([^']*)'/i.exec(slaveInfo)
  return {source, binlog, master: file && pos ? {file: file[1]!, pos: Number(pos[1])} : null, gtidSlavePos: gtid ? gtid[1]! : null}
}

const sh = shellQuote

async function run(ctx: StepContext, server: string, command: string, what: string, timeoutMs = 60_000): Promise<string> {
  const result = await (await ctx.ssh(server)).exec(command, timeoutMs)
  if (result.code !== 0) throw new Error(`${server}: ${what} failed (exit ${result.code ?? result.signal}): ${oneLine(result.stderr.trim().split('\n').slice(-3).join('; ') || result.stdout.trim())}`)
  return result.stdout
}

async function readPosition(ctx: StepContext, server: string, dir: string, source: string): Promise<CopyPosition> {
  const cat = (name: string) => `cat ${sh(`${dir}/xtrabackup_${name}`)} ${sh(`${dir}/mariadb_backup_${name}`)} 2>/dev/null`
  const out = await run(ctx, server, `${cat('binlog_info')}; echo '@@mha@@'; ${cat('slave_info')}; true`, `reading the copy's position in ${dir}`)
  const [binlogInfo = '', slaveInfo = ''] = out.split('@@mha@@')
  return parseCopyPosition(source, binlogInfo, slaveInfo)
}

const checkpointType = async (ctx: StepContext, server: string, dir: string): Promise<string | null> => {
  const out = await run(ctx, server, `cat ${sh(`${dir}/xtrabackup_checkpoints`)} 2>/dev/null; true`, `reading ${dir}`)
  return /backup_type\s*=\s*(\S+)/.exec(out)?.[1] ?? null
}

export const copyBackup: StepHandler<Of<'copy_backup'>> = {
  async check(step, ctx) {
    const {dir, source} = step.params
    if ((await checkpointType(ctx, step.server, dir)) === 'log-applied') return {done: true, reason: `a prepared copy is in ${dir} on ${step.server}`, outputs: {copy: await readPosition(ctx, step.server, dir, source)}}
    return {done: false}
  },
  async act(step, ctx) {
    const {dir, source} = step.params
    const src = ctx.server(source)
    await run(ctx, step.server, `rm -rf ${sh(dir)} && mkdir -p ${sh(dir)} && command -v mbstream >/dev/null && command -v mariadb-backup >/dev/null`, `preparing ${dir} (mbstream and mariadb-backup must be installed)`)
    await run(ctx, source, 'command -v mariadb-backup >/dev/null', `finding mariadb-backup (install the mariadb-backup package on ${source})`)
    // The login goes on stdin into a private file that the shell removes when mariadb-backup ends: never on a command line.
    const login = clientOptionFile(endpointOf(ctx.cluster, src))
    const backup = `umask 077; f=$(mktemp); trap 'rm -f "$f"' EXIT; cat > "$f"; mariadb-backup --defaults-extra-file="$f" --backup --slave-info --stream=xbstream --host=${sh(src.ip)} --port=${src.port} 2>${sh(`${src.remoteWorkdir}/mha-rebuild-${step.server}.log`)} || { tail -3 ${sh(`${src.remoteWorkdir}/mha-rebuild-${step.server}.log`)} >&2; exit 1; }`
    await run(ctx, source, `mkdir -p ${sh(src.remoteWorkdir)}`, `creating ${src.remoteWorkdir}`)
    const stream = (await ctx.ssh(source)).readStream(backup, 120_000, login)
    let bytes = 0
    const started = Date.now()
    const seconds = () => Math.round((Date.now() - started) / 1000)
    const counter = new PassThrough()
    stream.on('error', (error) => counter.destroy(error))
    stream.on('data', (chunk: Buffer) => {
      bytes += chunk.length
    })
    stream.pipe(counter)
    ctx.progress(step, `streaming a copy of ${source} (mariadb-backup --backup) into ${dir} on ${step.server}`)
    // On a timer, not on data: a copy that stalls still says so.
    const ticker = setInterval(() => ctx.progress(step, `${mib(bytes)} copied from ${source} to ${step.server} so far (${seconds()} s)`), ctx.progressIntervalMs)
    ticker.unref()
    let result
    try {
      result = await (await ctx.ssh(step.server)).pipeInto(`mbstream -x -C ${sh(dir)}`, counter, 120_000)
    } finally {
      clearInterval(ticker)
    }
    if (result.code !== 0) throw new Error(`${step.server}: mbstream -x into ${dir} failed (exit ${result.code ?? result.signal}): ${oneLine(result.stderr.trim())}`)
    const copied = `${mib(bytes)} copied from ${source} to ${step.server} in ${seconds()} s`
    ctx.note(`${step.id}: ${copied}`)
    ctx.progress(step, `${copied}; preparing the copy (mariadb-backup --prepare)`)
    await run(ctx, step.server, `mariadb-backup --prepare --target-dir=${sh(dir)} >${sh(`${dir}.prepare.log`)} 2>&1 || { tail -3 ${sh(`${dir}.prepare.log`)} >&2; exit 1; }`, `mariadb-backup --prepare in ${dir}`, 3_600_000)
    return {copy: await readPosition(ctx, step.server, dir, source)}
  },
  async verify(step, ctx, outputs) {
    const type = await checkpointType(ctx, step.server, step.params.dir)
    if (type !== 'log-applied') throw new Error(`${step.server}: the copy in ${step.params.dir} is not prepared (backup_type ${type ?? 'missing'})`)
    const copy = outputs.copy as CopyPosition | undefined
    if (!copy?.binlog && !copy?.master && copy?.gtidSlavePos === null) throw new Error(`${step.server}: the copy in ${step.params.dir} records no position (no xtrabackup_binlog_info or xtrabackup_slave_info)`)
  },
}

const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`

/** The server's SQL port accepts connections. */
function portOpen(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket()
    const done = (open: boolean) => {
      socket.destroy()
      resolve(open)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('error', () => done(false))
    socket.connect(port, host, () => done(true))
  })
}

export const stopServer: StepHandler<Of<'stop_server'>> = {
  async check(step, ctx) {
    const s = ctx.server(step.server)
    return (await portOpen(s.ip, s.port)) ? {done: false} : {done: true, reason: `nothing listens on ${s.ip}:${s.port}: ${step.server}'s mariadbd is down`}
  },
  async act(step, ctx) {
    const s = ctx.server(step.server)
    if (step.params.command === null) throw new Error(`${step.server}'s mariadbd answers on ${s.ip}:${s.port} and ${ctx.cluster.file} sets no rebuild.stop_command for it; stop it (or set the command), then apply again`)
    await run(ctx, step.server, step.params.command, `rebuild.stop_command`, 600_000)
    return undefined
  },
  async verify(step, ctx) {
    const s = ctx.server(step.server)
    await waitUntil(`${step.server}'s mariadbd to stop (${s.ip}:${s.port} to close)`, ctx.timeoutMs, async () => !(await portOpen(s.ip, s.port)), 250)
  },
}

const installed = async (ctx: StepContext, server: string, dir: string, datadir: string): Promise<boolean> =>
  (await run(ctx, server, `test ! -e ${sh(dir)} && grep -q 'backup_type = log-applied' ${sh(`${datadir}/xtrabackup_checkpoints`)} && echo yes; true`, `looking at ${datadir}`)).trim() === 'yes'

export const installBackup: StepHandler<Of<'install_backup'>> = {
  async check(step, ctx) {
    return (await installed(ctx, step.server, step.params.dir, step.params.datadir)) ? {done: true, reason: `${step.params.datadir} on ${step.server} holds the prepared copy`} : {done: false}
  },
  async act(step, ctx) {
    const {dir, datadir} = step.params
    const aside = `${datadir}.before-rebuild`
    const d = sh(datadir)
    // An existing datadir with files is kept aside (never deleted); its owner becomes the copy's.
    const script = [
      'set -e',
      `test -f ${sh(`${dir}/xtrabackup_checkpoints`)}`,
      'own=',
      `if [ -e ${d} ]; then own=$(stat -c %u:%g ${d}); if [ -n "$(ls -A ${d})" ]; then if [ -e ${sh(aside)} ]; then echo "${aside} exists already: move it away first" >&2; exit 3; fi; mv ${d} ${sh(aside)}; else rmdir ${d}; fi; fi`,
      `mkdir -p ${sh(dirname(datadir))}`,
      `mv ${sh(dir)} ${d}`,
      `if [ -n "$own" ]; then chown -R "$own" ${d}; fi`,
    ].join('\n')
    await run(ctx, step.server, script, `installing the copy into ${datadir}`)
    return undefined
  },
  async verify(step, ctx) {
    if (!(await installed(ctx, step.server, step.params.dir, step.params.datadir))) throw new Error(`${step.server}: ${step.params.datadir} does not hold the prepared copy`)
  },
}

async function answers(ctx: StepContext, server: string): Promise<boolean> {
  const s = ctx.server(server)
  if (!(await portOpen(s.ip, s.port))) return false
  return await withConnection(endpointOf(ctx.cluster, s), 2000, async (conn) => (await conn.queryOne('SELECT 1 AS one')) !== undefined).catch(() => false)
}

export const startServer: StepHandler<Of<'start_server'>> = {
  async check(step, ctx) {
    return (await answers(ctx, step.server)) ? {done: true, reason: `${step.server}'s mariadbd answers SQL`} : {done: false}
  },
  async act(step, ctx) {
    await run(ctx, step.server, step.params.command, 'rebuild.start_command', 600_000)
    return undefined
  },
  async verify(step, ctx) {
    await waitUntil(`${step.server}'s mariadbd to answer SQL after rebuild.start_command`, Math.max(ctx.timeoutMs, 120_000), () => answers(ctx, step.server), 500)
  },
}

export const replicateFromCopy: StepHandler<Of<'replicate_from_copy'>> = {
  async check(step, ctx) {
    const status = await replicaStatus(ctx, step.server)
    const p = step.params
    if (status && status.sourceHost === p.host && status.sourcePort === p.port && status.ioThread === 'running' && status.sqlThread === 'running')
      return {done: true, reason: `${step.server} already replicates from ${p.source} with both threads running`}
    return {done: false}
  },
  async act(step, ctx) {
    const p = step.params
    const copy = ctx.output(p.copy.fromStep, p.copy.output) as CopyPosition
    const dialect = await ctx.dialect(step.server)
    const conn = await ctx.sql(step.server)
    const status = await replicaStatus(ctx, step.server)
    if (status && status.sourceHost === p.host && status.sourcePort === p.port && !status.lastSqlErrno) {
      // Started by an earlier, interrupted run: it may have replicated since; never start it again from the copy's position.
      await conn.execute(dialect.startReplica)
      return undefined
    }
    const fromMaster = copy.source === p.source
    let coordinates: {file: string; pos: number} | undefined
    let gtidPos: string | undefined
    if (p.gtid) {
      gtidPos = fromMaster ? copy.binlog?.gtid : (copy.gtidSlavePos ?? copy.binlog?.gtid)
      if (gtidPos === undefined || !GTID_POS.test(gtidPos)) throw new Error(`${step.server}: the copy of ${copy.source} records no usable GTID position (${JSON.stringify(gtidPos ?? null)}); rebuild again, or plan with replication.gtid off`)
    } else {
      coordinates = fromMaster ? (copy.binlog ? {file: copy.binlog.file, pos: copy.binlog.pos} : undefined) : (copy.master ?? undefined)
      if (!coordinates) throw new Error(`${step.server}: the copy of ${copy.source} records no ${fromMaster ? 'binlog' : "master (--slave-info)"} coordinates; rebuild again`)
    }
    if (status) await conn.execute(dialect.stopReplica)
    await conn.execute(dialect.resetReplicaAll)
    if (gtidPos !== undefined) await conn.execute(`SET GLOBAL gtid_slave_pos = '${gtidPos}'`)
    const change = dialect.changeSource({
      host: p.host,
      port: p.port,
      user: p.user,
      ...(ctx.cluster.replPassword ? {password: ctx.cluster.replPassword.reveal()} : {}),
      ...(p.gtid ? {gtid: true} : {coordinates: coordinates!}),
    })
    await conn.execute(change.sql)
    await conn.execute(dialect.startReplica)
    ctx.note(`${step.server} replicates from ${p.source} from ${gtidPos !== undefined ? `GTID ${gtidPos || '(empty)'}` : `${coordinates!.file}:${coordinates!.pos}`}, the position recorded in the copy of ${copy.source}`)
    return undefined
  },
  async verify(step, ctx) {
    await waitReplicating(ctx, step.server, step.params.source)
  },
}

const listed = async (ctx: StepContext, server: string) => ((await ctx.readState()).outOfService ?? []).some((o) => o.server === server)

export const markOutOfService: StepHandler<Of<'mark_out_of_service'>> = {
  async check(step, ctx) {
    return (await listed(ctx, step.server)) ? {done: true, reason: `${step.server} is listed out of service already`} : {done: false}
  },
  async act(step, ctx) {
    const entry = {server: step.server, since: new Date().toISOString(), reason: step.params.reason, plan: ctx.workDir.replace(/\.work$/, '') + '.json'}
    // One compare-and-swap: an ack or a fence record written meanwhile is kept.
    await ctx.updateState((state) => ({...state, outOfService: withOutOfService(state, entry)}))
    return undefined
  },
  async verify(step, ctx) {
    if (!(await listed(ctx, step.server))) throw new Error(`${step.server} is not listed out of service in the cluster's state`)
  },
}
