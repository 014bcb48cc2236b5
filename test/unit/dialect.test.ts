import {readFileSync} from 'node:fs'
import {describe, expect, it} from 'vitest'
import {compareVersions, dialectFor, parseServerVersion, sqlString} from '../../src/dialect/index.js'
import type {Dialect, ReplicaStatus} from '../../src/dialect/index.js'
import {selectTogether} from '../../src/inspect/inspect.js'

type Row = Record<string, unknown>
interface Fixture {
  version: string
  versionComment: string
  replicaStatus: Row
  replicaStatusConnecting?: Row
  binaryLogStatus: Row
  gtidState: Row
}

const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/dialect/${name}.json`, import.meta.url), 'utf8')) as Fixture
const mariadb1011 = fixture('mariadb-10.11')
const mysql57 = fixture('mysql-5.7')
const mysql8021 = fixture('mysql-8.0.21')
const mysql8036 = fixture('mysql-8.0.36')
const mysql84 = fixture('mysql-8.4')
const dialectOf = (f: Fixture) => dialectFor(parseServerVersion(f.version, f.versionComment))
const dialect = (version: string) => dialectFor(parseServerVersion(version))

/** Every statement a dialect can produce, for checks on the whole vocabulary of a version. */
function allSql(d: Dialect): string[] {
  const base = {host: 'db1', port: 3306, user: 'repl', password: 'secret'}
  return [
    d.showReplicaStatus,
    d.showReplicaHosts,
    d.showBinaryLogStatus,
    d.showBinaryLogs,
    d.stopReplica,
    d.stopReplicaIoThread,
    d.startReplica,
    d.resetReplicaAll,
    d.changeSource({...base, gtid: true}).sql,
    d.changeSource({...base, coordinates: {file: 'binlog.000001', pos: 4}}).sql,
    d.changeSource(base).sql,
    d.waitForCoordinates({file: 'binlog.000001', pos: 4}, 10),
    d.waitForGtid('x', 10),
    ...d.setReadOnly(true),
    ...d.setReadOnly(false),
    d.readOnlyQuery,
    d.gtidStateQuery,
    d.replicaHeartbeatQuery,
    d.setHeartbeatPeriod(1),
  ]
}

/** The statement with its string literals blanked: what a hostile value would have to change. */
const skeleton = (sql: string) => sql.replace(/'(?:[^'\\]|\\.|'')*'/g, "'?'")

describe('parseServerVersion', () => {
  it.each([
    ['10.11.19-MariaDB-0+deb12u1-log', '', {flavor: 'mariadb', major: 10, minor: 11, patch: 19}],
    ['5.5.5-10.6.12-MariaDB', '', {flavor: 'mariadb', major: 10, minor: 6, patch: 12}],
    ['11.4.3-MariaDB', 'mariadb.org binary distribution', {flavor: 'mariadb', major: 11, minor: 4, patch: 3}],
    ['10.5.22', 'MariaDB Server', {flavor: 'mariadb', major: 10, minor: 5, patch: 22}],
    ['8.0.36', 'MySQL Community Server - GPL', {flavor: 'mysql', major: 8, minor: 0, patch: 36}],
    ['8.4.2', '', {flavor: 'mysql', major: 8, minor: 4, patch: 2}],
    ['5.7.44-log', '', {flavor: 'mysql', major: 5, minor: 7, patch: 44}],
    ['8.0.35-27', 'Percona Server (GPL), Release 27', {flavor: 'mysql', major: 8, minor: 0, patch: 35}],
  ])('%s', (version, comment, expected) => {
    expect(parseServerVersion(version, comment)).toEqual({...expected, text: version})
  })

  it('keeps a MySQL 5.5.5 as it is', () => {
    expect(parseServerVersion('5.5.5')).toMatchObject({flavor: 'mysql', major: 5, minor: 5, patch: 5})
  })

  it('names the string it cannot parse', () => {
    expect(() => parseServerVersion('banana-MariaDB')).toThrow(/"banana-MariaDB"/)
    expect(() => parseServerVersion('8.0')).toThrow(/"8\.0"/)
  })
})

describe('compareVersions', () => {
  it('orders by major, minor, patch', () => {
    const sorted = ['8.0.36', '5.7.44', '8.4.2', '8.0.4', '8.0.22'].map((v) => parseServerVersion(v)).sort(compareVersions)
    expect(sorted.map((v) => v.text)).toEqual(['5.7.44', '8.0.4', '8.0.22', '8.0.36', '8.4.2'])
    expect(compareVersions(parseServerVersion('10.6.1-MariaDB'), parseServerVersion('10.6.1-MariaDB-log'))).toBe(0)
  })

  it('refuses to compare MariaDB with MySQL', () => {
    expect(() => compareVersions(parseServerVersion('10.11.2-MariaDB'), parseServerVersion('8.0.36'))).toThrow(/mariadb.*mysql/)
  })
})

describe('SQL chosen per version', () => {
  it.each([
    ['MariaDB 10.11', dialectOf(mariadb1011), 'SHOW SLAVE STATUS', 'SHOW MASTER STATUS', 'SLAVE', 'CHANGE MASTER TO MASTER_HOST', 'MASTER_POS_WAIT'],
    ['MySQL 5.7', dialectOf(mysql57), 'SHOW SLAVE STATUS', 'SHOW MASTER STATUS', 'SLAVE', 'CHANGE MASTER TO MASTER_HOST', 'MASTER_POS_WAIT'],
    ['MySQL 8.0.21', dialectOf(mysql8021), 'SHOW SLAVE STATUS', 'SHOW MASTER STATUS', 'SLAVE', 'CHANGE MASTER TO MASTER_HOST', 'MASTER_POS_WAIT'],
    ['MySQL 8.0.22', dialect('8.0.22'), 'SHOW REPLICA STATUS', 'SHOW MASTER STATUS', 'REPLICA', 'CHANGE MASTER TO MASTER_HOST', 'MASTER_POS_WAIT'],
    ['MySQL 8.0.23', dialect('8.0.23'), 'SHOW REPLICA STATUS', 'SHOW MASTER STATUS', 'REPLICA', 'CHANGE REPLICATION SOURCE TO SOURCE_HOST', 'MASTER_POS_WAIT'],
    ['MySQL 8.0.26', dialect('8.0.26'), 'SHOW REPLICA STATUS', 'SHOW MASTER STATUS', 'REPLICA', 'CHANGE REPLICATION SOURCE TO SOURCE_HOST', 'SOURCE_POS_WAIT'],
    ['MySQL 8.0.36', dialectOf(mysql8036), 'SHOW REPLICA STATUS', 'SHOW MASTER STATUS', 'REPLICA', 'CHANGE REPLICATION SOURCE TO SOURCE_HOST', 'SOURCE_POS_WAIT'],
    ['MySQL 8.2.0', dialect('8.2.0'), 'SHOW REPLICA STATUS', 'SHOW BINARY LOG STATUS', 'REPLICA', 'CHANGE REPLICATION SOURCE TO SOURCE_HOST', 'SOURCE_POS_WAIT'],
    ['MySQL 8.4', dialectOf(mysql84), 'SHOW REPLICA STATUS', 'SHOW BINARY LOG STATUS', 'REPLICA', 'CHANGE REPLICATION SOURCE TO SOURCE_HOST', 'SOURCE_POS_WAIT'],
    ['MySQL 9.1', dialect('9.1.0'), 'SHOW REPLICA STATUS', 'SHOW BINARY LOG STATUS', 'REPLICA', 'CHANGE REPLICATION SOURCE TO SOURCE_HOST', 'SOURCE_POS_WAIT'],
  ])('%s', (_name, d, replicaStatus, binaryLogStatus, keyword, change, posWait) => {
    expect(d.showReplicaStatus).toBe(replicaStatus)
    expect(d.showReplicaHosts).toBe(keyword === 'REPLICA' ? 'SHOW REPLICAS' : 'SHOW SLAVE HOSTS')
    expect(d.showBinaryLogStatus).toBe(binaryLogStatus)
    expect(d.showBinaryLogs).toBe('SHOW BINARY LOGS')
    expect([d.stopReplica, d.stopReplicaIoThread, d.startReplica, d.resetReplicaAll]).toEqual([
      `STOP ${keyword}`,
      `STOP ${keyword} IO_THREAD`,
      `START ${keyword}`,
      `RESET ${keyword} ALL`,
    ])
    expect(d.changeSource({host: 'db1', port: 3306, user: 'repl'}).sql.startsWith(change)).toBe(true)
    expect(d.waitForCoordinates({file: 'b.000001', pos: 4}, 1)).toContain(`${posWait}(`)
  })

  it('MySQL 8.4 never emits a statement or function it removed', () => {
    for (const sql of allSql(dialectOf(mysql84))) expect(sql).not.toMatch(/slave|master/i)
  })

  it('MariaDB positions by GTID with MASTER_USE_GTID = slave_pos', () => {
    const d = dialectOf(mariadb1011)
    expect(d.changeSource({host: 'db1', port: 3306, user: 'repl', password: 'pw', gtid: true}).sql).toBe(
      "CHANGE MASTER TO MASTER_HOST = 'db1', MASTER_PORT = 3306, MASTER_USER = 'repl', MASTER_PASSWORD = 'pw', MASTER_USE_GTID = slave_pos",
    )
    expect(d.changeSource({host: 'db1', port: 3306, user: 'repl', coordinates: {file: 'mariadb-bin.000042', pos: 1234}}).sql).toBe(
      "CHANGE MASTER TO MASTER_HOST = 'db1', MASTER_PORT = 3306, MASTER_USER = 'repl', MASTER_USE_GTID = no, " +
        "MASTER_LOG_FILE = 'mariadb-bin.000042', MASTER_LOG_POS = 1234",
    )
  })

  it('MySQL turns auto-positioning on for GTID and off for coordinates, in the syntax of its version', () => {
    const coordinates = {file: 'binlog.000042', pos: 1234}
    expect(dialectOf(mysql57).changeSource({host: 'db1', port: 3306, user: 'repl', gtid: true}).sql).toBe(
      "CHANGE MASTER TO MASTER_HOST = 'db1', MASTER_PORT = 3306, MASTER_USER = 'repl', MASTER_AUTO_POSITION = 1",
    )
    expect(dialectOf(mysql8021).changeSource({host: 'db1', port: 3306, user: 'repl', coordinates}).sql).toBe(
      "CHANGE MASTER TO MASTER_HOST = 'db1', MASTER_PORT = 3306, MASTER_USER = 'repl', MASTER_AUTO_POSITION = 0, " +
        "MASTER_LOG_FILE = 'binlog.000042', MASTER_LOG_POS = 1234",
    )
    expect(dialectOf(mysql84).changeSource({host: 'db1', port: 3306, user: 'repl', password: 'pw', gtid: true}).sql).toBe(
      "CHANGE REPLICATION SOURCE TO SOURCE_HOST = 'db1', SOURCE_PORT = 3306, SOURCE_USER = 'repl', SOURCE_PASSWORD = 'pw', SOURCE_AUTO_POSITION = 1",
    )
    expect(dialectOf(mysql8036).changeSource({host: 'db1', port: 3306, user: 'repl', coordinates}).sql).toBe(
      "CHANGE REPLICATION SOURCE TO SOURCE_HOST = 'db1', SOURCE_PORT = 3306, SOURCE_USER = 'repl', SOURCE_AUTO_POSITION = 0, " +
        "SOURCE_LOG_FILE = 'binlog.000042', SOURCE_LOG_POS = 1234",
    )
  })

  it('waits for coordinates and GTIDs with whole-second timeouts', () => {
    expect(dialectOf(mariadb1011).waitForCoordinates({file: 'mariadb-bin.000001', pos: 4447}, 30)).toBe(
      "SELECT MASTER_POS_WAIT('mariadb-bin.000001', 4447, 30) AS result",
    )
    expect(dialectOf(mariadb1011).waitForGtid('0-11-24,1-12-7', 2.5)).toBe("SELECT MASTER_GTID_WAIT('0-11-24,1-12-7', 3) AS result")
    expect(dialectOf(mysql84).waitForCoordinates({file: 'binlog.000014', pos: 9138812}, 30)).toBe(
      "SELECT SOURCE_POS_WAIT('binlog.000014', 9138812, 30) AS result",
    )
    expect(dialectOf(mysql57).waitForGtid('5d3a1f2e-4b7c-11ee-9c41-0242ac120002:1-18829', 60)).toBe(
      "SELECT WAIT_FOR_EXECUTED_GTID_SET('5d3a1f2e-4b7c-11ee-9c41-0242ac120002:1-18829', 60) AS result",
    )
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => dialectOf(mysql84).waitForGtid('x', bad)).toThrow(/timeout/)
    }
    expect(() => dialectOf(mysql84).waitForCoordinates({file: 'binlog.000014', pos: 1.5}, 1)).toThrow(/position/)
  })

  it('uses super_read_only where it exists, in an order each step of which is legal', () => {
    expect(dialectOf(mariadb1011).setReadOnly(true)).toEqual(['SET GLOBAL read_only = ON'])
    expect(dialectOf(mariadb1011).readOnlyQuery).toBe('SELECT @@global.read_only AS read_only, NULL AS super_read_only')
    expect(dialect('5.7.7').setReadOnly(true)).toEqual(['SET GLOBAL read_only = ON'])
    expect(dialect('5.7.7').readOnlyQuery).toContain('NULL AS super_read_only')
    for (const d of [dialectOf(mysql57), dialectOf(mysql84)]) {
      expect(d.setReadOnly(true)).toEqual(['SET GLOBAL read_only = ON', 'SET GLOBAL super_read_only = ON'])
      expect(d.setReadOnly(false)).toEqual(['SET GLOBAL super_read_only = OFF', 'SET GLOBAL read_only = OFF'])
      expect(d.readOnlyQuery).toBe('SELECT @@global.read_only AS read_only, @@global.super_read_only AS super_read_only')
    }
  })

  it('reads the GTID variables of each flavor', () => {
    expect(dialectOf(mariadb1011).gtidStateQuery).toMatch(/gtid_binlog_pos.*gtid_slave_pos.*gtid_current_pos.*gtid_strict_mode.*gtid_domain_id/)
    expect(dialectOf(mariadb1011).gtidStateQuery).toMatch(/@@global\.gtid_binlog_state AS gtid_binlog_state/)
    expect(dialectOf(mariadb1011).gtidStateQuery).not.toMatch(/gtid_mode|gtid_executed/)
    expect(dialectOf(mysql8036).gtidStateQuery).toMatch(/gtid_mode.*gtid_executed.*enforce_gtid_consistency/)
    expect(dialectOf(mysql8036).gtidStateQuery).not.toMatch(/gtid_binlog_state/)
  })

  it('asks read_only and the GTID variables of each flavor in one SELECT, with the columns of both', () => {
    for (const d of [mariadb1011, mysql57, mysql8021, mysql8036, mysql84].map(dialectOf)) {
      expect(selectTogether(d.readOnlyQuery, d.gtidStateQuery)).toBe(`${d.readOnlyQuery}, ${d.gtidStateQuery.replace(/^SELECT /, '')}`)
    }
    expect(() => selectTogether('SELECT @@a AS a', 'SELECT COUNT(*) AS n FROM t')).toThrow(/not a SELECT of variables alone/)
  })

  it('refuses servers too old for GTID replication', () => {
    expect(() => dialect('5.6.51-log')).toThrow(/5\.6\.51/)
    expect(() => dialect('5.5.68-MariaDB')).toThrow(/5\.5\.68/)
  })
})

describe('changeSource escaping', () => {
  const tricky = "r3pl'pa\\ss"

  it('writes the password the recorded MariaDB replica connected with', () => {
    const {sql, display} = dialectOf(mariadb1011).changeSource({host: '127.0.0.99', port: 3399, user: 'repl2', password: tricky, gtid: true})
    expect(sql).toBe(
      "CHANGE MASTER TO MASTER_HOST = '127.0.0.99', MASTER_PORT = 3399, MASTER_USER = 'repl2', MASTER_PASSWORD = 'r3pl''pa\\\\ss', MASTER_USE_GTID = slave_pos",
    )
    expect(display).toBe(sql.replace("'r3pl''pa\\\\ss'", "'********'"))
    expect(parse(mariadb1011)).toMatchObject({sourceUser: 'repl2', ioThread: 'running'})
  })

  it('keeps hostile values inside their literals', () => {
    const hostile = "x\\', MASTER_HOST = 'evil"
    for (const d of [dialectOf(mariadb1011), dialectOf(mysql57), dialectOf(mysql84)]) {
      const benign = d.changeSource({host: 'h', port: 3306, user: 'u', password: 'p', coordinates: {file: 'f', pos: 4}})
      const evil = d.changeSource({host: hostile, port: 3306, user: hostile, password: hostile, coordinates: {file: hostile, pos: 4}})
      expect(skeleton(evil.sql)).toBe(skeleton(benign.sql))
      expect(skeleton(evil.display)).toBe(skeleton(benign.display))
    }
    expect(sqlString("a'b\\c")).toBe("'a''b\\\\c'")
  })

  it('masks only the password, and shows no password clause when none is given', () => {
    const d = dialectOf(mysql8036)
    const {sql, display} = d.changeSource({host: 'db1', port: 3306, user: 'repl', password: tricky, gtid: true})
    expect(display).toContain("SOURCE_PASSWORD = '********'")
    expect(display).not.toContain('r3pl')
    expect(display).toContain("SOURCE_USER = 'repl'")
    expect(sql).toContain("SOURCE_PASSWORD = 'r3pl''pa\\\\ss'")
    const keep = d.changeSource({host: 'db1', port: 3306, user: 'repl', gtid: true})
    expect(keep.sql).not.toContain('PASSWORD')
    expect(keep.display).toBe(keep.sql)
  })

  it('rejects contradictory or impossible options', () => {
    const d = dialectOf(mysql84)
    expect(() => d.changeSource({host: 'db1', port: 3306, user: 'r', gtid: true, coordinates: {file: 'f', pos: 4}})).toThrow(/not both/)
    expect(() => d.changeSource({host: 'db1', port: 0, user: 'r'})).toThrow(/port/)
    expect(() => d.changeSource({host: 'db1', port: 3306, user: 'r', coordinates: {file: 'f', pos: -1}})).toThrow(/position/)
  })
})

const parse = (f: Fixture, row = f.replicaStatus): ReplicaStatus => dialectOf(f).parseReplicaStatus(row)
const caughtUp = (f: Fixture, status: ReplicaStatus) => dialectOf(f).sqlThreadCaughtUpStates.includes(status.sqlThreadState)
const noFilters = {doDb: '', ignoreDb: '', doTable: '', ignoreTable: '', wildDoTable: '', wildIgnoreTable: ''}

describe('parseReplicaStatus', () => {
  it('MariaDB 10.11, recorded: GTID slave_pos, caught up, with filters', () => {
    const status = parse(mariadb1011)
    expect(status).toEqual({
      sourceHost: '127.0.0.99',
      sourcePort: 3399,
      sourceUser: 'repl2',
      sourceServerId: 11,
      ioThread: 'running',
      sqlThread: 'running',
      read: {file: 'mariadb-bin.000001', pos: 4447},
      executed: {file: 'mariadb-bin.000001', pos: 4447},
      relayLogFile: 'relay-bin.000002',
      relayLogPos: 2424,
      relayLogSpace: 2727,
      secondsBehind: 0,
      lastIoErrno: 0,
      lastIoError: '',
      lastSqlErrno: 0,
      lastSqlError: '',
      filters: {...noFilters, ignoreDb: 'app', wildIgnoreTable: 'scratch%.%'},
      gtidMode: 'slave_pos',
      retrievedGtid: '0-11-24',
      executedGtid: '',
      sqlThreadState: 'Slave has read all relay log; waiting for more updates',
      sourceUuid: '',
    } satisfies ReplicaStatus)
    expect(caughtUp(mariadb1011, status)).toBe(true)
  })

  it('MariaDB 10.11, recorded: IO thread connecting with a refused login', () => {
    const status = parse(mariadb1011, mariadb1011.replicaStatusConnecting)
    expect(status).toMatchObject({ioThread: 'connecting', sqlThread: 'running', gtidMode: 'no', sourceServerId: null, secondsBehind: null})
    expect(status.read).toEqual({file: 'mariadb-bin.000001', pos: 4})
    expect(status.lastIoErrno).toBe(1045)
    expect(status.lastIoError).toMatch(/Access denied for user 'repl2'/)
  })

  it('MySQL 5.7: auto-position, lagging, GTID sets joined across lines', () => {
    const status = parse(mysql57)
    expect(status).toMatchObject({
      sourceHost: 'db1.example.internal',
      sourcePort: 3306,
      sourceServerId: 1,
      ioThread: 'running',
      sqlThread: 'running',
      read: {file: 'mysql-bin.000123', pos: 88_412_705},
      executed: {file: 'mysql-bin.000123', pos: 88_409_112},
      relayLogFile: 'db2-relay-bin.000369',
      relayLogPos: 88_410_932,
      secondsBehind: 3,
      filters: {...noFilters, ignoreDb: 'scratch', wildIgnoreTable: 'tmp.%'},
      gtidMode: 'auto_position',
      retrievedGtid: '5d3a1f2e-4b7c-11ee-9c41-0242ac120002:1207-18834',
      executedGtid: '5d3a1f2e-4b7c-11ee-9c41-0242ac120002:1-18829,6e8b2c90-4b7c-11ee-a1d3-0242ac120003:1-12',
      sqlThreadState: 'Reading event from the relay log',
    })
    expect(caughtUp(mysql57, status)).toBe(false)
  })

  it('MySQL 8.0.21 (old column names): file/position, SQL thread stopped on an error', () => {
    const status = parse(mysql8021)
    expect(status).toMatchObject({
      ioThread: 'running',
      sqlThread: 'stopped',
      read: {file: 'binlog.000007', pos: 52_188},
      executed: {file: 'binlog.000007', pos: 47_804},
      secondsBehind: null,
      lastSqlErrno: 1062,
      filters: {...noFilters, doDb: 'shop,billing', ignoreTable: 'shop.sessions'},
      gtidMode: 'no',
      retrievedGtid: '',
      executedGtid: '',
      sqlThreadState: '',
    })
    expect(status.lastSqlError).toMatch(/^Could not execute Write_rows event on table shop\.orders; Duplicate entry/)
  })

  it('MySQL 8.0.36 (new column names): auto-position, caught up', () => {
    const status = parse(mysql8036)
    expect(status).toMatchObject({
      sourceHost: '10.20.0.11',
      sourceServerId: 101,
      ioThread: 'running',
      sqlThread: 'running',
      read: {file: 'mysql-bin.000318', pos: 734_019_021},
      executed: {file: 'mysql-bin.000318', pos: 734_019_021},
      relayLogSpace: 734_019_532,
      secondsBehind: 0,
      filters: {...noFilters, wildIgnoreTable: 'tmp.%'},
      gtidMode: 'auto_position',
      executedGtid: '3f9c1d72-9e41-11ee-b5a2-005056a1c0de:1-2291847,41a7e0b8-9e41-11ee-9d14-005056a1c0df:1-3',
    })
    expect(caughtUp(mysql8036, status)).toBe(true)
  })

  it('MySQL 8.4: the source is down and the IO thread reconnects', () => {
    const status = parse(mysql84)
    expect(status).toMatchObject({
      sourceHost: '10.30.0.21',
      ioThread: 'connecting',
      sqlThread: 'running',
      read: {file: 'binlog.000014', pos: 9_138_812},
      executed: {file: 'binlog.000014', pos: 9_138_812},
      secondsBehind: null,
      lastIoErrno: 2003,
      gtidMode: 'auto_position',
      retrievedGtid: 'c0a8011e-5a2b-11ef-a0c7-00163e5f2b11:8812-40211',
      executedGtid: 'c0a8011e-5a2b-11ef-a0c7-00163e5f2b11:1-40211',
    })
    expect(caughtUp(mysql84, status)).toBe(true)
  })

  it('accepts old and new column names whatever the dialect', () => {
    // The same recorded rows under the other spelling (MySQL 8.0.22 renamed Master_* to Source_*, Slave_* to Replica_*).
    const respelled = (row: Row, from: RegExp, to: string) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k.replace(from, to), v]))
    const newNames = respelled(respelled(mysql57.replicaStatus, /Master/g, 'Source'), /Slave/g, 'Replica')
    const oldNames = respelled(respelled(mysql8036.replicaStatus, /Source/g, 'Master'), /Replica_/g, 'Slave_')
    expect(newNames).toHaveProperty('Exec_Source_Log_Pos')
    expect(newNames).not.toHaveProperty('Exec_Master_Log_Pos')
    expect(oldNames).toHaveProperty('Exec_Master_Log_Pos')
    expect(oldNames).not.toHaveProperty('Exec_Source_Log_Pos')
    expect(dialect('8.4.0').parseReplicaStatus(newNames)).toEqual(parse(mysql57))
    expect(dialect('8.0.21').parseReplicaStatus(oldNames)).toEqual(parse(mysql8036))
  })

  it('accepts positions as numbers too', () => {
    const row = {...mysql8036.replicaStatus, Read_Source_Log_Pos: 734_019_021, Exec_Source_Log_Pos: 734_019_021, Seconds_Behind_Source: 0}
    expect(parse(mysql8036, row)).toEqual(parse(mysql8036))
  })

  it('names a missing or malformed column', () => {
    const missing = {...mysql8036.replicaStatus}
    delete missing.Exec_Source_Log_Pos
    expect(() => parse(mysql8036, missing)).toThrow(/Exec_Master_Log_Pos or Exec_Source_Log_Pos/)
    expect(() => parse(mysql8036, {...mysql8036.replicaStatus, Read_Source_Log_Pos: 'x'})).toThrow(/Read_Master_Log_Pos/)
    expect(() => parse(mariadb1011, {...mariadb1011.replicaStatus, Using_Gtid: 'Sometimes'})).toThrow(/Using_Gtid/)
  })
})

describe('parseBinaryLogStatus', () => {
  it.each([
    ['MariaDB 10.11 (recorded)', mariadb1011, {file: 'mariadb-bin.000001', pos: 4447, executedGtid: ''}],
    ['MySQL 5.7', mysql57, {file: 'mysql-bin.000087', pos: 30_614, executedGtid: '5d3a1f2e-4b7c-11ee-9c41-0242ac120002:1-18829,6e8b2c90-4b7c-11ee-a1d3-0242ac120003:1-12'}],
    ['MySQL 8.0.21', mysql8021, {file: 'binlog.000003', pos: 1577, executedGtid: ''}],
    ['MySQL 8.0.36', mysql8036, {file: 'mysql-bin.000112', pos: 41_877_302, executedGtid: '3f9c1d72-9e41-11ee-b5a2-005056a1c0de:1-2291847,41a7e0b8-9e41-11ee-9d14-005056a1c0df:1-3'}],
    ['MySQL 8.4', mysql84, {file: 'binlog.000009', pos: 4127, executedGtid: 'c0a8011e-5a2b-11ef-a0c7-00163e5f2b11:1-40211'}],
  ])('%s', (_name, f, expected) => {
    expect(dialectOf(f).parseBinaryLogStatus(f.binaryLogStatus)).toEqual({doDb: '', ignoreDb: '', ...expected})
  })
})

describe('parseGtidState', () => {
  it('MariaDB 10.11 (recorded)', () => {
    expect(dialectOf(mariadb1011).parseGtidState(mariadb1011.gtidState)).toEqual({
      enabled: true,
      binlogPos: '0-11-24',
      slavePos: '0-11-24',
      currentPos: '0-11-24',
      strict: false,
      domainId: 0,
    })
    expect(dialectOf(mariadb1011).parseGtidState({...mariadb1011.gtidState, gtid_strict_mode: '1', gtid_domain_id: '3'})).toMatchObject({
      strict: true,
      domainId: 3,
    })
    // gtid_binlog_state lists every (domain, server_id); a row recorded without it leaves binlogState out.
    const withState = dialectOf(mariadb1011).parseGtidState({...mariadb1011.gtidState, gtid_binlog_state: '0-3-20,0-11-24'})
    expect(withState).toMatchObject({binlogPos: '0-11-24', binlogState: '0-3-20,0-11-24'})
    expect('binlogState' in dialectOf(mariadb1011).parseGtidState(mariadb1011.gtidState)).toBe(false)
  })

  it('MySQL with gtid_mode=ON', () => {
    const executed = '3f9c1d72-9e41-11ee-b5a2-005056a1c0de:1-2291847,41a7e0b8-9e41-11ee-9d14-005056a1c0df:1-3'
    expect(dialectOf(mysql8036).parseGtidState(mysql8036.gtidState)).toEqual({
      enabled: true,
      binlogPos: executed,
      slavePos: executed,
      currentPos: executed,
      strict: true,
      domainId: null,
    })
  })

  it('MySQL has no binlog state: binlogPos (gtid_executed) already holds every transaction', () => {
    expect('binlogState' in dialectOf(mysql8036).parseGtidState(mysql8036.gtidState)).toBe(false)
  })

  it('MySQL with GTIDs off or only permissive', () => {
    expect(dialectOf(mysql8021).parseGtidState(mysql8021.gtidState)).toMatchObject({enabled: false, strict: false, binlogPos: ''})
    const permissive = {...mysql57.gtidState, gtid_mode: 'ON_PERMISSIVE', enforce_gtid_consistency: 'WARN'}
    expect(dialectOf(mysql57).parseGtidState(permissive)).toMatchObject({enabled: false, strict: false})
  })
})

describe('replica heartbeat', () => {
  const recorded = JSON.parse(readFileSync(new URL('../fixtures/dialect/mariadb-10.11-heartbeat.json', import.meta.url), 'utf8')) as {version: string; versionComment: string; heartbeatDefault: Row; silentBefore: Row; silentAfter: Row}
  const maria = dialectFor(parseServerVersion(recorded.version, recorded.versionComment))

  it('MariaDB 10.11, recorded: SHOW ALL SLAVES STATUS gives the period and the count, no time (SHOW SLAVE STATUS has neither)', () => {
    expect(maria.replicaHeartbeatQuery).toBe('SHOW ALL SLAVES STATUS')
    expect(maria.parseReplicaHeartbeat([recorded.heartbeatDefault])).toEqual({periodSeconds: 30, received: 1, lastHeartbeatAgeSeconds: null, lastEventAgeSeconds: null})
    expect(mariadb1011.replicaStatus).not.toHaveProperty('Slave_heartbeat_period')
    // The row SHOW ALL SLAVES STATUS gives is a SHOW SLAVE STATUS row too.
    expect(maria.parseReplicaStatus(recorded.heartbeatDefault)).toMatchObject({sourceHost: '127.0.0.45', ioThread: 'running'})
  })

  it('MariaDB 10.11, recorded: a master blackholed for 5 s leaves the IO thread at Yes, the count and the position standing still', () => {
    const [before, after] = [recorded.silentBefore, recorded.silentAfter].map((r) => ({status: maria.parseReplicaStatus(r), heartbeat: maria.parseReplicaHeartbeat([r])}))
    expect(before!.heartbeat).toMatchObject({periodSeconds: 1, received: 112})
    expect(after!.heartbeat).toEqual(before!.heartbeat)
    expect([after!.status.ioThread, after!.status.read]).toEqual(['running', before!.status.read])
  })

  it('MariaDB: only the default connection counts; none, or a server that replicates from nobody, gives null', () => {
    const named = {...recorded.heartbeatDefault, Connection_name: 'other', Slave_heartbeat_period: '5.000', Slave_received_heartbeats: 9}
    expect(maria.parseReplicaHeartbeat([named, recorded.silentAfter])).toMatchObject({periodSeconds: 1, received: 112})
    expect(maria.parseReplicaHeartbeat([named])).toBeNull()
    expect(maria.parseReplicaHeartbeat([])).toBeNull()
  })

  it('MySQL reads performance_schema, ages by the server clock; 5.7 has no queued-transaction times', () => {
    const d8 = dialectOf(mysql8036)
    expect(d8.replicaHeartbeatQuery).toMatch(/FROM performance_schema\.replication_connection_configuration c JOIN performance_schema\.replication_connection_status s/)
    expect(d8.replicaHeartbeatQuery).toContain('TIMESTAMPDIFF(MICROSECOND, s.LAST_QUEUED_TRANSACTION_END_QUEUE_TIMESTAMP, NOW(6))')
    expect(d8.replicaHeartbeatQuery).toContain("WHERE c.CHANNEL_NAME = ''")
    expect(dialectOf(mysql57).replicaHeartbeatQuery).not.toContain('LAST_QUEUED')
    expect(dialectOf(mysql57).replicaHeartbeatQuery).toContain('LAST_HEARTBEAT_TIMESTAMP')
    // Rows as mysql2 returns them (DECIMAL and BIGINT as strings), written by hand: MySQL is not installable here.
    expect(d8.parseReplicaHeartbeat([{heartbeat_period: '30.000', received_heartbeats: '17', last_heartbeat_age_us: '2500000', last_event_age_us: '812345'}])).toEqual({
      periodSeconds: 30,
      received: 17,
      lastHeartbeatAgeSeconds: 2.5,
      lastEventAgeSeconds: 0.812345,
    })
    expect(d8.parseReplicaHeartbeat([{heartbeat_period: '0.000', received_heartbeats: '0', last_heartbeat_age_us: null, last_event_age_us: null}])).toEqual({periodSeconds: 0, received: 0, lastHeartbeatAgeSeconds: null, lastEventAgeSeconds: null})
    // performance_schema off: the tables are empty.
    expect(d8.parseReplicaHeartbeat([])).toBeNull()
  })

  it('sets the period in the syntax of each version', () => {
    expect(maria.setHeartbeatPeriod(1)).toBe('CHANGE MASTER TO MASTER_HEARTBEAT_PERIOD = 1')
    expect(dialectOf(mysql57).setHeartbeatPeriod(2.5)).toBe('CHANGE MASTER TO MASTER_HEARTBEAT_PERIOD = 2.5')
    expect(dialectOf(mysql84).setHeartbeatPeriod(1)).toBe('CHANGE REPLICATION SOURCE TO SOURCE_HEARTBEAT_PERIOD = 1')
    expect(() => maria.setHeartbeatPeriod(-1)).toThrow(/heartbeat period/)
  })
})

describe('a server\'s own replication filters (a master\'s too)', () => {
  it('MariaDB reads the global replicate_* variables; NULL or empty is no filter', () => {
    const d = dialect('10.11.6-MariaDB')
    expect(d.replicationFiltersQuery).toMatch(/@@global\.replicate_do_table AS replicate_do_table/)
    expect(d.parseReplicationFilters([{replicate_do_db: '', replicate_ignore_db: null, replicate_do_table: 'app.t1,app.t2', replicate_ignore_table: '', replicate_wild_do_table: 'app.%', replicate_wild_ignore_table: ''}])).toEqual({
      doDb: '',
      ignoreDb: '',
      doTable: 'app.t1,app.t2',
      ignoreTable: '',
      wildDoTable: 'app.%',
      wildIgnoreTable: '',
    })
  })

  it('MySQL 8 reads performance_schema.replication_applier_global_filters, one row per filter; 5.7 cannot tell a master\'s', () => {
    const d = dialect('8.0.36')
    expect(d.replicationFiltersQuery).toBe('SELECT FILTER_NAME, FILTER_RULE FROM performance_schema.replication_applier_global_filters')
    expect(
      d.parseReplicationFilters([
        {FILTER_NAME: 'REPLICATE_DO_TABLE', FILTER_RULE: 'app.t1'},
        {FILTER_NAME: 'REPLICATE_IGNORE_DB', FILTER_RULE: 'scratch'},
        {FILTER_NAME: 'REPLICATE_REWRITE_DB', FILTER_RULE: '(a,b)'},
      ]),
    ).toEqual({doDb: '', ignoreDb: 'scratch', doTable: 'app.t1', ignoreTable: '', wildDoTable: '', wildIgnoreTable: ''})
    expect(d.parseReplicationFilters([])).toEqual({doDb: '', ignoreDb: '', doTable: '', ignoreTable: '', wildDoTable: '', wildIgnoreTable: ''})
    expect(dialect('5.7.44').replicationFiltersQuery).toBeNull()
  })
})
