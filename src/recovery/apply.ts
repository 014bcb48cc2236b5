import {spawn, type ChildProcess} from 'node:child_process'
import {closeSync, constants as fsConstants, openSync, unlinkSync, writeSync} from 'node:fs'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {basename, join} from 'node:path'
import {Transform} from 'node:stream'
import {ServerConnection, type Endpoint} from '../inspect/mysql.js'
import {oneLine, UserError} from '../util/errors.js'
import {redact} from '../util/secret.js'
import {bindAddressOption, findExecutable} from '../util/executables.js'
import {dialectFor, parseServerVersion} from '../dialect/index.js'
import {appliedByPosition, positionRefusal} from './applied-position.js'
import {concatSyntheticBinlogs} from './concat.js'
import {appliedPrefix, mariadbExecuted, markedExecuted, mysqlExecuted, PROGRESS_TABLE, PROGRESS_TABLE_DDL, ProgressMarker, streamLayout, writeStreamWithout, type ExecutedTest} from './exactly-once.js'

export interface ApplyOptions {
  /** mysqlbinlog to use; default the first of mariadb-binlog, mysqlbinlog on PATH. */
  mysqlbinlog?: string
  /** Client to use; default the first of mariadb, mysql on PATH. */
  mysql?: string
  /**
   * The longest time without progress (no bytes passing from mysqlbinlog to the client), not the whole apply:
   * a large recovery may take longer. Restoring the server settings afterwards gets its own bound of the same length.
   */
  timeoutMs: number
  /**
   * An earlier attempt may have committed part of the stream. Where the target records GTIDs (or mha's progress
   * marks, on MariaDB without a binlog, or its binlog position before the stream, on MySQL without GTIDs) the
   * part it has is skipped anyway; where it cannot tell, a retry is refused rather than applying anything twice.
   */
  retry?: boolean
  /**
   * Where the credentials file and a concatenation go (a private directory is made inside); default the OS temp
   * dir. Also where a MySQL target without GTIDs gets its position record (applied-position.ts): the work folder.
   */
  tempDir?: string
  /** Names the stream across attempts (a plan's step), for the position record; default its files' names and sizes. */
  streamId?: string
  /** Called once the position record is written, before the stream: keeps the work folder where a resume finds it. */
  persist?: () => Promise<void>
}

export interface ApplyResult {
  /** Statements mysqlbinlog produced (each ends with its delimiter line) and the client ran. */
  statements: number
  /** Whole transactions in the stream. */
  transactions: number
  /** Of those, the ones the target had committed before this run (an earlier, interrupted run): skipped. */
  alreadyApplied: number
  /** The target records what it applied (GTIDs, or its binlog after a recorded position), so a retry applies only the rest. */
  tracked: boolean
}

export const APPLY_MAX_PACKET = 1024 * 1024 * 1024

export {findExecutable} from '../util/executables.js'

/** A value for a MySQL option file: quoted, so '#' is no comment, with the escapes the option parser undoes. */
export function optionFileValue(value: string): string {
  const escaped = value.replace(/[\\"\n\r\t]/g, (c) => ({'\\': '\\\\', '"': '\\"', '\n': '\\n', '\r': '\\r', '\t': '\\t'})[c]!)
  return `"${escaped}"`
}

/** A [client] option file holding the login, so that it never appears on a command line. */
export function clientOptionFile(endpoint: Endpoint): string {
  return `[client]\nuser=${optionFileValue(endpoint.user)}\npassword=${optionFileValue(endpoint.password.reveal())}\n`
}

export interface ServerSettings {
  maxAllowedPacket: string
  superReadOnly: boolean
}

/**
 * Applies synthetic binlogs to a server, from the manager host: ONE `mysqlbinlog | mysql --binary-mode`
 * stream over TCP (several files are concatenated first, so a transaction split across them stays whole).
 * The login goes to the client through a pipe read as its --defaults-file (no other option file is read). For the duration,
 * max_allowed_packet is 1 GiB (the largest event must fit in one BINLOG statement) and super_read_only is off
 * (read_only stays on; the admin user writes through it); both are restored, also on failure.
 *
 * Exactly once: the stream's transactions that the target has committed already (an earlier run interrupted
 * part-way) are skipped, judged by the GTIDs the target records. A MariaDB target with log_bin off records none
 * itself: each XID transaction of the stream then also writes its GTID to ${PROGRESS_TABLE} and commits it with
 * the rest (ProgressMarker), and a retry reads that; it is refused only where the transaction after the last
 * mark is not an XID one (DDL, a non-transactional engine: it may have committed unmarked). A MySQL target with
 * gtid_mode OFF and log_bin on gets its binlog position recorded before the first byte is streamed; a retry
 * counts the whole transactions its binlog holds after it (applied-position.ts), or is refused where they cannot
 * be matched to the stream. A target that records nothing (MySQL with log_bin off) is applied to once only (a
 * retry is refused). The caller makes sure the target's SQL thread has stopped.
 */
export async function applyBinlogs(files: readonly string[], endpoint: Endpoint, options: ApplyOptions): Promise<ApplyResult> {
  const where = `${endpoint.name} (${endpoint.host}:${endpoint.port})`
  if (files.length === 0) throw new UserError(`${where}: no binlog to apply`)
  const mysqlbinlog = findExecutable(options.mysqlbinlog ? [options.mysqlbinlog] : ['mariadb-binlog', 'mysqlbinlog'])
  const client = findExecutable(options.mysql ? [options.mysql] : ['mariadb', 'mysql'])
  if (!mysqlbinlog) throw new UserError(`${options.mysqlbinlog ?? 'mariadb-binlog or mysqlbinlog'} is not installed on this host (needed to apply binlogs to ${where})`)
  if (!client) throw new UserError(`${options.mysql ?? 'the mariadb or mysql client'} is not installed on this host (needed to apply binlogs to ${where})`)

  // Each preparatory statement gets the whole bound; the stream itself is bounded by lack of progress.
  const remaining = (): number => options.timeoutMs
  const fail = (problem: string): UserError => {
    // SQL errors already name the server.
    const text = problem.startsWith(where) ? problem.slice(where.length).replace(/^:\s*/, '') : problem
    return new UserError(redact(`${where}: applying ${files.map((f) => basename(f)).join(' + ')} failed: ${oneLine(text)}`, [endpoint.password]))
  }

  const work = await mkdtemp(join(options.tempDir ?? tmpdir(), 'mha-apply-'))
  let conn: ServerConnection | undefined
  let saved: ServerSettings | undefined
  let applyError: UserError | undefined
  let credentials: number | undefined
  try {
    let input = files[0]!
    if (files.length > 1) {
      input = join(work, 'combined.binlog')
      await concatSyntheticBinlogs(files, input)
    }

    credentials = unnamedFile(work, clientOptionFile(endpoint))
    const target = await ServerConnection.open(endpoint, remaining())
    conn = target
    // A client left running by an earlier, killed apply may still be committing: end it before counting.
    await endEarlierStream(conn, remaining())
    const layout = await streamLayout(input)
    const executed = await executedOn(conn)
    let prefix = appliedPrefix(layout, executed.test, executed.marked)
    let recordBeforeStream: (() => Promise<void>) | undefined
    if (!prefix.known && executed.binlog) {
      const positioned = await appliedByPosition((sql) => target.query(sql, [], remaining()), {
        ...executed.binlog,
        dir: options.tempDir ?? tmpdir(),
        server: endpoint.name,
        files,
        streamId: options.streamId,
        retry: options.retry ?? false,
        transactions: layout.transactions.length,
        persist: options.persist,
      })
      if ('problem' in positioned.prefix) throw fail(positionRefusal(endpoint.name, positioned.prefix.problem))
      // One session applied the stream in order: what committed is its first `count` transactions.
      prefix = {...positioned.prefix, applied: Array.from({length: positioned.prefix.count}, (_, i) => i)}
      recordBeforeStream = positioned.recordBeforeStream
    }
    if (!prefix.known && options.retry)
      throw fail(
        executed.marked && executed.test
          ? `an earlier attempt may have committed part of this stream; ${endpoint.name} (log_bin off) has mha's progress marks for ${prefix.count} of its ${layout.transactions.length} transactions, and the next one is not transactional (DDL, a non-transactional engine or XA), so whether it committed is unknown; it is not applied twice: rebuild ${endpoint.name} from the new master`
          : `an earlier attempt may have committed part of this stream and ${endpoint.name} records no GTIDs that tell which part (log_bin off, or no GTIDs in the stream); it is not applied twice: rebuild ${endpoint.name} from the new master`,
      )
    const result = {transactions: layout.transactions.length, alreadyApplied: prefix.count, tracked: prefix.known}
    // An unfinished last transaction alone would only be rolled back at the end of the stream.
    if (prefix.count === layout.transactions.length && (prefix.count > 0 || layout.unfinishedFrom === null)) return {statements: 0, ...result}
    if (prefix.count > 0) {
      // Per domain: after a domain's hole the target may have another domain's later transactions; it gets the
      // stream without exactly the ones it has.
      const rest = join(work, 'rest.binlog')
      await writeStreamWithout(input, layout, prefix.applied, rest)
      input = rest
    }
    saved = await readApplySettings(conn, remaining())
    await raiseApplySettings(conn, saved, remaining())
    await recordBeforeStream?.()

    const outcome = await runBinlogPipeline(
      mysqlbinlog,
      ['--no-defaults', '--verify-binlog-checksum', input],
      client,
      [
        // Only these options, read from a pipe so no credentials file exists on disk even if this process is
        // killed: a [client] password in ~/.my.cnf must not override the cluster's credentials.
        '--defaults-file=/dev/fd/3',
        // Held for the session's life: a later attempt finds (and ends) a client this process left behind.
        `--init-command=SELECT GET_LOCK('${STREAM_LOCK}', 10)`,
        '--protocol=TCP',
        ...bindAddressOption(client, endpoint.localAddress),
        `--host=${endpoint.host}`,
        `--port=${endpoint.port}`,
        `--connect-timeout=${Math.max(1, Math.ceil(Math.min(remaining(), 30_000) / 1000))}`,
        '--batch',
        '--binary-mode',
        `--max-allowed-packet=${APPLY_MAX_PACKET}`,
      ],
      remaining(),
      credentials,
      executed.marked ? new ProgressMarker() : undefined,
    )
    if (outcome.timedOut) throw fail(`made no progress for ${options.timeoutMs} ms; mysqlbinlog and the client were killed`)
    if (outcome.clientFailure) throw fail(`${basename(client)}: ${outcome.clientFailure}`)
    if (outcome.binlogFailure) throw fail(`${basename(mysqlbinlog)}: ${outcome.binlogFailure}`)
    return {statements: outcome.statements, ...result}
  } catch (error) {
    applyError = error instanceof UserError ? error : fail(error instanceof Error ? error.message : String(error))
    throw applyError
  } finally {
    let restoreError: UserError | undefined
    if (saved) await restoreSettings(conn, endpoint, saved, options.timeoutMs).catch((error: unknown) => (restoreError = error instanceof UserError ? error : fail(String(error))))
    await conn?.close()
    if (credentials !== undefined) closeSync(credentials)
    await rm(work, {recursive: true, force: true})
    // Thrown from finally on purpose: a server left with changed settings must not look like a success.
    // eslint-disable-next-line no-unsafe-finally
    if (restoreError) throw applyError ? new UserError(`${applyError.message}; then ${restoreError.message}`) : restoreError
  }
}

/** Linux O_TMPFILE: a file with no name, gone when its last descriptor closes (also when this process is killed). */
const O_TMPFILE = 0o20200000

/**
 * A readable descriptor of a 0600 file holding `content` that has no name on disk: O_TMPFILE where the
 * filesystem offers it, else a file removed right after it is opened.
 */
export function unnamedFile(dir: string, content: string): number {
  let fd: number
  try {
    fd = openSync(dir, O_TMPFILE | fsConstants.O_RDWR, 0o600)
  } catch {
    const path = join(dir, `.client-${process.pid}-${Date.now()}`)
    fd = openSync(path, 'wx+', 0o600)
    unlinkSync(path)
  }
  writeSync(fd, content, 0)
  return fd
}

/** The user lock a stream's client session holds on the target. */
const STREAM_LOCK = 'mha_apply_logs'

async function endEarlierStream(conn: ServerConnection, timeoutMs: number): Promise<void> {
  const holder = Number((await conn.queryOne(`SELECT IS_USED_LOCK('${STREAM_LOCK}') AS id`))?.id ?? 0)
  if (holder > 0) await conn.execute(`KILL ${holder}`).catch(() => undefined)
  const deadline = Date.now() + timeoutMs
  while (Number((await conn.queryOne(`SELECT IS_FREE_LOCK('${STREAM_LOCK}') AS free`))?.free) !== 1) {
    if (Date.now() > deadline) throw new Error(`the client session of an earlier attempt (connection ${holder}) did not end within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/**
 * What the target can say about the transactions it has committed (see exactly-once.ts); `marked`: from mha's
 * progress marks (MariaDB, log_bin off), which this stream then writes too (the table is made if missing).
 */
async function executedOn(conn: ServerConnection): Promise<{test: ExecutedTest; marked: boolean; binlog?: {serverUuid: string; statusQuery: string}}> {
  const text = (row: Record<string, unknown> | undefined, column: string): string => (typeof row?.[column] === 'string' ? row[column] : '')
  const version = text(await conn.queryOne('SELECT @@version AS v'), 'v')
  if (/mariadb/i.test(version)) {
    const row = await conn.queryOne('SELECT @@global.log_bin AS log_bin, @@global.gtid_binlog_state AS state, @@global.gtid_slave_pos AS slave_pos')
    if (Number(row?.log_bin) === 1) return {test: mariadbExecuted({logBin: true, binlogState: text(row, 'state'), slavePos: text(row, 'slave_pos')}), marked: false}
    await conn.execute(PROGRESS_TABLE_DDL)
    return {test: markedExecuted({marks: await progressMarks(conn), slavePos: text(row, 'slave_pos')}), marked: true}
  }
  const row = await conn.queryOne('SELECT @@global.gtid_mode AS gtid_mode, @@global.gtid_executed AS executed, @@global.log_bin AS log_bin, @@server_uuid AS server_uuid')
  const test = mysqlExecuted({gtidMode: text(row, 'gtid_mode') || 'OFF', executed: text(row, 'executed')})
  // With a binlog, where it ends before the stream tells a retry what was committed (applied-position.ts).
  const binlog = Number(row?.log_bin) === 1 ? {serverUuid: text(row, 'server_uuid'), statusQuery: dialectFor(parseServerVersion(version)).showBinaryLogStatus} : undefined
  return {test, marked: false, ...(binlog ? {binlog} : {})}
}

/** mha's progress marks on a MariaDB target without a binlog (the table must exist), as domain-server-seq text. */
export async function progressMarks(conn: ServerConnection): Promise<string> {
  return (await conn.query(`SELECT CONCAT(domain_id, '-', server_id, '-', seq_no) AS gtid FROM ${PROGRESS_TABLE}`)).map((m) => String(m.gtid)).join(',')
}

/** What applying a binlog changes on the target for its duration: read before the change, to put back after it. */
export async function readApplySettings(conn: ServerConnection, timeoutMs: number): Promise<ServerSettings> {
  const packet = await conn.queryOne('SELECT @@global.max_allowed_packet AS value', [], timeoutMs)
  // MariaDB has no super_read_only: no row.
  const superReadOnly = await conn.queryOne(`SHOW GLOBAL VARIABLES LIKE 'super_read_only'`, [], timeoutMs)
  const saved = {maxAllowedPacket: String(packet?.value), superReadOnly: superReadOnly !== undefined && /^(1|ON)$/i.test(String(superReadOnly.Value))}
  if (!/^\d+$/.test(saved.maxAllowedPacket)) throw new Error(`unexpected @@global.max_allowed_packet: ${saved.maxAllowedPacket}`)
  return saved
}

/**
 * max_allowed_packet 1 GiB for the sessions opened from now on (the largest event, or a whole transaction that
 * mariadb-binlog --flashback prints as one, must fit in one BINLOG statement), super_read_only off; the client
 * is started with --max-allowed-packet=APPLY_MAX_PACKET too. restoreSettings puts them back.
 */
export async function raiseApplySettings(conn: ServerConnection, saved: ServerSettings, timeoutMs: number): Promise<void> {
  await conn.execute(`SET GLOBAL max_allowed_packet = ${APPLY_MAX_PACKET}`, timeoutMs)
  if (saved.superReadOnly) await conn.execute('SET GLOBAL super_read_only = 0', timeoutMs)
}

/** Puts max_allowed_packet and super_read_only back, on a new connection if the first one died meanwhile. */
export async function restoreSettings(conn: ServerConnection | undefined, endpoint: Endpoint, saved: ServerSettings, timeoutMs: number): Promise<void> {
  const restore = async (c: ServerConnection): Promise<void> => {
    if (saved.superReadOnly) await c.execute('SET GLOBAL super_read_only = 1')
    await c.execute(`SET GLOBAL max_allowed_packet = ${saved.maxAllowedPacket}`)
  }
  try {
    if (!conn) throw new Error('no connection')
    await restore(conn)
  } catch {
    const fresh = await ServerConnection.open(endpoint, timeoutMs)
    try {
      await restore(fresh)
    } catch (error) {
      throw new UserError(
        `${endpoint.name} (${endpoint.host}:${endpoint.port}): could not restore max_allowed_packet=${saved.maxAllowedPacket}${saved.superReadOnly ? ' and super_read_only=1' : ''}: ${oneLine(error)}`,
      )
    } finally {
      await fresh.close()
    }
  }
}

export interface PipelineOutcome {
  statements: number
  timedOut: boolean
  /** The client's first error line, or how it ended. */
  clientFailure: string | null
  binlogFailure: string | null
}

const STDERR_LIMIT = 64 * 1024
const STATEMENT_END = Buffer.from('/*!*/;\n')

/**
 * The first STDERR_LIMIT bytes and the last ones: the client echoes the failing statement before its ERROR line,
 * and a rewound or applied transaction can be one statement of many megabytes.
 */
function collectStderr(child: ChildProcess): () => string {
  const chunks: Buffer[] = []
  let size = 0
  let tail = Buffer.alloc(0)
  child.stderr?.on('data', (chunk: Buffer) => {
    if (size < STDERR_LIMIT) {
      chunks.push(chunk)
      size += chunk.length
      return
    }
    tail = Buffer.concat([tail, chunk])
    if (tail.length > STDERR_LIMIT) tail = tail.subarray(tail.length - STDERR_LIMIT)
  })
  return () => Buffer.concat([...chunks, Buffer.from('\n'), tail]).toString('utf8')
}

/** The line that says what went wrong: the first ERROR line, else the first line. */
function firstErrorLine(stderr: string): string | null {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '')
  return lines.find((l) => /error/i.test(l)) ?? lines[0] ?? null
}

function describeExit(code: number | null, signal: NodeJS.Signals | null, stderr: string): string | null {
  if (code === 0) return null
  return firstErrorLine(stderr) ?? (signal ? `killed by ${signal}` : `exit code ${code}`)
}

/** Runs `binlog args | client args`, through this process so the statements can be counted; killed after timeoutMs without a byte passing. */
export async function runBinlogPipeline(
  binlogProgram: string,
  binlogArgs: string[],
  clientProgram: string,
  clientArgs: string[],
  timeoutMs: number,
  /** Handed to the client as its file descriptor 3 (read as --defaults-file=/dev/fd/3). */
  clientFd3?: number,
  /** Rewrites the statements on their way to the client (ProgressMarker); its failure ends the stream uncommitted. */
  rewrite?: Transform,
): Promise<PipelineOutcome> {
  const binlog = spawn(binlogProgram, binlogArgs, {stdio: ['ignore', 'pipe', 'pipe']})
  const client = spawn(clientProgram, clientArgs, {stdio: ['pipe', 'ignore', 'pipe', clientFd3 ?? 'ignore']})
  const binlogStderr = collectStderr(binlog)
  const clientStderr = collectStderr(client)
  let statements = 0
  let carry = Buffer.alloc(0)
  let timedOut = false
  let timer: NodeJS.Timeout | undefined
  const arm = (): void => {
    clearTimeout(timer)
    timer = setTimeout(() => {
      timedOut = true
      binlog.kill('SIGKILL')
      client.kill('SIGKILL')
    }, timeoutMs)
  }
  arm()
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      arm()
      // Keep the end of each chunk: a delimiter may straddle two.
      const text = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk
      for (let at = text.indexOf(STATEMENT_END); at !== -1; at = text.indexOf(STATEMENT_END, at + STATEMENT_END.length)) statements++
      carry = Buffer.from(text.subarray(Math.max(0, text.length - STATEMENT_END.length + 1)))
      done(null, chunk)
    },
  })
  // The client may exit first (an SQL error): its stdin then fails with EPIPE, which is expected.
  const clientStdin = client.stdin!
  clientStdin.on('error', () => undefined)
  counter.on('error', () => undefined)
  const rewriting: {failure: string | null} = {failure: null}
  // A failed rewrite kills the client before its input ends: an open transaction is rolled back, not committed.
  rewrite?.on('error', (error) => {
    rewriting.failure ??= error.message
    client.kill('SIGKILL')
    binlog.kill('SIGKILL')
  })
  ;(rewrite ? binlog.stdout.pipe(counter).pipe(rewrite) : binlog.stdout.pipe(counter)).pipe(clientStdin)
  // Once the client is gone nothing reads mysqlbinlog's output: let it flow away, or mysqlbinlog's stdout
  // never ends and its 'close' never comes (not even after a kill).
  client.once('exit', () => {
    binlog.stdout.unpipe()
    binlog.stdout.resume()
  })

  const exited = (child: ChildProcess): Promise<{code: number | null; signal: NodeJS.Signals | null; error?: Error}> =>
    new Promise((resolve) => {
      child.once('error', (error) => resolve({code: null, signal: null, error}))
      child.once('close', (code, signal) => resolve({code, signal}))
      // 'close' also waits for the pipes, which a leftover grandchild could hold open: not forever.
      child.once('exit', (code, signal) => setTimeout(() => resolve({code, signal}), 2000).unref())
    })
  const binlogDone = exited(binlog)
  const clientDone = exited(client)
  try {
    const clientEnd = await clientDone
    // No use decoding the rest for a client that failed.
    const binlogStillRunning = binlog.exitCode === null && binlog.signalCode === null
    if (binlogStillRunning && clientEnd.code !== 0) binlog.kill('SIGTERM')
    const binlogEnd = await binlogDone
    const clientFailure = rewriting.failure !== null ? `the stream was stopped: ${rewriting.failure}` : clientEnd.error ? clientEnd.error.message : describeExit(clientEnd.code, clientEnd.signal, clientStderr())
    const binlogFailure = binlogEnd.error
      ? binlogEnd.error.message
      : binlogStillRunning && clientEnd.code !== 0
        ? null
        : describeExit(binlogEnd.code, binlogEnd.signal, binlogStderr())
    return {statements, timedOut, clientFailure, binlogFailure}
  } finally {
    clearTimeout(timer)
  }
}
