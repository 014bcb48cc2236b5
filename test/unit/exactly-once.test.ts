import {execFileSync} from 'node:child_process'
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {appliedPrefix, formatStreamGtid, mariadbExecuted, mysqlExecuted, streamLayout, writeStreamFrom} from '../../src/recovery/exactly-once.js'
import {fixtureNames, fixturePath, hasMariadbBinlog, mariadbBinlog} from '../fixtures/binlog/fixtures.js'

/** The GTIDs mariadb-binlog itself prints for a file, in order, and the offset of each GTID event: the reference. */
function referenceGtids(file: string): Array<{gtid: string; at: number}> {
  const text = execFileSync(mariadbBinlog, ['--no-defaults', file], {encoding: 'utf8'})
  const out: Array<{gtid: string; at: number}> = []
  let at = -1
  for (const line of text.split('\n')) {
    const position = /^# at (\d+)$/.exec(line)
    if (position) at = Number(position[1])
    const gtid = /\tGTID (\d+-\d+-\d+)/.exec(line)
    if (gtid) out.push({gtid: gtid[1]!, at})
  }
  return out
}

const masterFile = fixturePath('master', fixtureNames('master')[0]!)

describe.skipIf(!hasMariadbBinlog)('exactly-once application of a synthetic binlog', () => {
  it('lists every transaction of a real MariaDB binlog with its GTID and where it starts, as mariadb-binlog does', async () => {
    const layout = await streamLayout(masterFile)
    const reference = referenceGtids(masterFile)
    expect(reference.length).toBeGreaterThan(5)
    expect(layout.transactions.map((t) => ({gtid: formatStreamGtid(t.gtid!), at: t.start}))).toEqual(reference)
    // Transactions follow one another without gaps or overlaps.
    for (let i = 1; i < layout.transactions.length; i++) expect(layout.transactions[i]!.start).toBeGreaterThanOrEqual(layout.transactions[i - 1]!.end)
  })

  it('counts the prefix a MariaDB target has committed, per domain and server, and refuses to guess without log_bin', async () => {
    const layout = await streamLayout(masterFile)
    const gtids = layout.transactions.map((t) => formatStreamGtid(t.gtid!))
    const third = gtids[2]!
    expect(appliedPrefix(layout, mariadbExecuted({logBin: true, binlogState: third, slavePos: ''}))).toEqual({count: 3, known: true})
    // The SQL thread's position counts too (gtid_slave_pos: per domain).
    expect(appliedPrefix(layout, mariadbExecuted({logBin: true, binlogState: '', slavePos: gtids[4]!}))).toEqual({count: 5, known: true})
    // Another server's transactions in the same domain say nothing about this server's.
    const [domain, , seq] = third.split('-')
    expect(appliedPrefix(layout, mariadbExecuted({logBin: true, binlogState: `${domain}-77-${seq}`, slavePos: ''}))).toEqual({count: 0, known: true})
    expect(appliedPrefix(layout, mariadbExecuted({logBin: false, binlogState: third, slavePos: ''}))).toEqual({count: 0, known: false})
  })

  it('writes the rest of a stream that mariadb-binlog reads, starting at the first transaction not applied', async () => {
    const layout = await streamLayout(masterFile)
    const out = join(mkdtempSync(join(tmpdir(), 'mha-rest-')), 'rest.binlog')
    await writeStreamFrom(masterFile, layout, 4, out)
    const expected = referenceGtids(masterFile).slice(4).map((r) => r.gtid)
    expect(referenceGtids(out).map((r) => r.gtid)).toEqual(expected)
    // Its format description must not announce a server start: mysqlbinlog would print a ROLLBACK for it.
    const text = execFileSync(mariadbBinlog, ['--no-defaults', out], {encoding: 'utf8'})
    expect(text.split('\n').filter((l) => l.startsWith('ROLLBACK') && !l.includes('added by mysqlbinlog'))).toEqual([])
  })

  it('judges MySQL GTIDs by gtid_executed, and not at all with gtid_mode OFF', () => {
    const uuid = '3e11fa47-71ca-11e1-9e33-c80aa9429562'
    const layout = {
      transactions: [1n, 2n, 3n].map((gno, i) => ({start: 100 * i, end: 100 * i + 100, gtid: {flavor: 'mysql' as const, uuid, gno}})),
      formats: [],
      unfinishedFrom: null,
    }
    expect(appliedPrefix(layout, mysqlExecuted({gtidMode: 'ON', executed: `${uuid.toUpperCase()}:1-2`}))).toEqual({count: 2, known: true})
    expect(appliedPrefix(layout, mysqlExecuted({gtidMode: 'ON', executed: `${uuid}:1-5`}))).toEqual({count: 3, known: true})
    expect(appliedPrefix(layout, mysqlExecuted({gtidMode: 'OFF', executed: ''}))).toEqual({count: 0, known: false})
    expect(appliedPrefix({...layout, transactions: [{start: 0, end: 10, gtid: null}]}, mysqlExecuted({gtidMode: 'ON', executed: ''}))).toEqual({count: 0, known: false})
  })
})
