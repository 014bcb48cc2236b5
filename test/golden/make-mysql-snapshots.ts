// Builds the MySQL golden snapshots from recorded status rows (test/fixtures/dialect), since no MySQL
// server can run here: db1 is a dead master, db2 replicates as recorded, db3 lags behind it.
// Run: npx tsx test/golden/make-mysql-snapshots.ts   (then UPDATE_GOLDEN=1 to refresh the expected plans)
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {dialectFor, parseServerVersion} from '../../src/dialect/index.js'
import type {ServerSnapshot, Snapshot, SqlFacts} from '../../src/inspect/types.js'

const here = dirname(fileURLToPath(import.meta.url))
interface Fixture {
  version: string
  versionComment: string
  replicaStatus: Record<string, unknown>
  binaryLogStatus: Record<string, unknown>
  gtidState: Record<string, unknown>
}

/**
 * `errant`: db3 lacks the transactions of every server but the dead master (the recorded executed set's other
 * UUIDs), so db2 holds them alone: errant. Without it db3 lacks only the dead master's last ten transactions.
 */
function build(fixtureName: string, scenario: string, lagBytes: number, options: {errant?: boolean} = {}): void {
  const fx = JSON.parse(readFileSync(join(here, '../fixtures/dialect', `${fixtureName}.json`), 'utf8')) as Fixture
  const version = parseServerVersion(fx.version, fx.versionComment)
  const dialect = dialectFor(version)
  const recorded = dialect.parseReplicaStatus(fx.replicaStatus)
  const gtid = dialect.parseGtidState(fx.gtidState)
  const sourceHost = recorded.sourceHost
  const facts = (serverId: number, lag: number): SqlFacts => {
    const replica = structuredClone(recorded)
    replica.read = {file: replica.read.file, pos: replica.read.pos - lag}
    replica.executed = {file: replica.read.file, pos: replica.read.pos}
    replica.ioThread = 'connecting'
    replica.sqlThread = 'running'
    replica.lastSqlErrno = 0
    replica.lastSqlError = ''
    replica.lastIoErrno = 2003
    replica.lastIoError = `error reconnecting to master 'repl@${sourceHost}:3306' - retry-time: 60 retries: 1`
    return {
      reachable: true,
      version,
      serverId,
      readOnly: true,
      superReadOnly: version.major >= 8 ? true : false,
      logBin: true,
      logSlaveUpdates: true,
      relayLogPurge: false,
      binlogFormat: 'ROW',
      binlogChecksum: 'CRC32',
      gtid: lag === 0 ? gtid : {...gtid, binlogPos: '', currentPos: '', slavePos: ''},
      replica,
      binaryLog: dialect.parseBinaryLogStatus(fx.binaryLogStatus),
      binaryLogs: [],
      replUser: {exists: true, canReplicate: true},
      relayLogIndex: '/var/lib/mysql/relay-bin.index',
      longQueries: [],
    }
  }
  const ssh = (binlogs: {file: string; size: number}[]): ServerSnapshot['ssh'] => ({
    reachable: true,
    binlogDir: '/var/lib/mysql',
    binlogReadable: true,
    mysqlbinlog: '/usr/bin/mysqlbinlog',
    workdirWritable: true,
    binlogs,
    relayLogs: [{file: '/var/lib/mysql/relay-bin.000041', size: 4_000_000}, {file: '/var/lib/mysql/relay-bin.000042', size: 1_200_000}],
  })
  const db3 = facts(3, lagBytes)
  if (recorded.gtidMode === 'auto_position') {
    // db3 received fewer transactions: trim the last ten from its retrieved set.
    const trimmed = (set: string) => set.replace(/-(\d+)$/, (_, end: string) => `-${Number(end) - 10}`)
    db3.replica!.retrievedGtid = trimmed(recorded.retrievedGtid)
    if (options.errant) db3.gtid = {...gtid, binlogPos: trimmed(gtid.binlogPos.split(',')[0]!)}
    else {
      // Only the dead master's own range is shorter; every other UUID's transactions are on both replicas.
      const lagging = (set: string) => set.split(',').map((part) => (part.startsWith(`${recorded.sourceUuid}:`) ? trimmed(part) : part)).join(',')
      db3.gtid = {...gtid, binlogPos: lagging(gtid.binlogPos), currentPos: lagging(gtid.currentPos), slavePos: lagging(gtid.slavePos)}
    }
  }
  const snapshot: Snapshot = {
    cluster: scenario,
    servers: [
      {name: 'db1', address: `${sourceHost}:3306`, sql: {reachable: false, kind: 'unreachable', message: `db1 (${sourceHost}:3306): cannot connect (ECONNREFUSED)`}, ssh: ssh([{file: recorded.read.file, size: recorded.read.pos + 4096}])},
      {name: 'db2', address: '10.0.0.12:3306', sql: facts(2, 0), ssh: ssh([])},
      {name: 'db3', address: '10.0.0.13:3306', sql: db3, ssh: ssh([])},
    ],
    relayLookups:
      recorded.gtidMode === 'no'
        ? [{target: 'db3', source: 'db2', after: db3.replica!.read, found: {files: ['/var/lib/mysql/relay-bin.000042'], offset: 1_200_000 - lagBytes}, problem: null}]
        : [],
  }
  const dir = join(here, scenario)
  mkdirSync(dir, {recursive: true})
  writeFileSync(join(dir, 'snapshot.json'), JSON.stringify(snapshot, null, 2) + '\n')
  writeFileSync(
    join(dir, 'cluster.yaml'),
    [
      `# Built by make-mysql-snapshots.ts from test/fixtures/dialect/${fixtureName}.json`,
      `name: ${scenario}`,
      'user: mha',
      'password: unused-in-golden-tests',
      'repl_user: repl',
      'servers:',
      `  - {name: db1, hostname: ${sourceHost}}`,
      '  - {name: db2, hostname: 10.0.0.12}',
      '  - {name: db3, hostname: 10.0.0.13, candidate_master: true}',
      '',
    ].join('\n'),
  )
}

build('mysql-5.7', 'mysql-5.7-gtid', 3000)
build('mysql-5.7', 'mysql-5.7-gtid-errant', 3000, {errant: true})
build('mysql-8.0.21', 'mysql-8.0-file-lagging', 3000)
build('mysql-8.0.36', 'mysql-8.0-gtid-errant', 3000, {errant: true})
build('mysql-8.4', 'mysql-8.4-gtid', 3000)
