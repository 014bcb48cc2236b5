import {execFileSync} from 'node:child_process'
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {appliedPrefix, formatStreamGtid, mariadbExecuted, markedExecuted, mysqlExecuted, PROGRESS_TABLE, ProgressMarker, streamLayout, writeStreamWithout, type StreamLayout} from '../../src/recovery/exactly-once.js'
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
    expect(appliedPrefix(layout, mariadbExecuted({logBin: true, binlogState: third, slavePos: ''}))).toMatchObject({count: 3, known: true})
    // The SQL thread's position counts too (gtid_slave_pos: per domain).
    expect(appliedPrefix(layout, mariadbExecuted({logBin: true, binlogState: '', slavePos: gtids[4]!}))).toMatchObject({count: 5, known: true})
    // Another server's transactions in the same domain say nothing about this server's.
    const [domain, , seq] = third.split('-')
    expect(appliedPrefix(layout, mariadbExecuted({logBin: true, binlogState: `${domain}-77-${seq}`, slavePos: ''}))).toMatchObject({count: 0, known: true})
    expect(appliedPrefix(layout, mariadbExecuted({logBin: false, binlogState: third, slavePos: ''}))).toMatchObject({count: 0, known: false})
  })

  it('writes the rest of a stream that mariadb-binlog reads, starting at the first transaction not applied', async () => {
    const layout = await streamLayout(masterFile)
    const out = join(mkdtempSync(join(tmpdir(), 'mha-rest-')), 'rest.binlog')
    await writeStreamWithout(masterFile, layout, [0, 1, 2, 3], out)
    const expected = referenceGtids(masterFile).slice(4).map((r) => r.gtid)
    expect(referenceGtids(out).map((r) => r.gtid)).toEqual(expected)
    // Its format description must not announce a server start: mysqlbinlog would print a ROLLBACK for it.
    const text = execFileSync(mariadbBinlog, ['--no-defaults', out], {encoding: 'utf8'})
    expect(text.split('\n').filter((l) => l.startsWith('ROLLBACK') && !l.includes('added by mysqlbinlog'))).toEqual([])
  })

  it('writes a stream without the transactions a target has anywhere in it, which mariadb-binlog reads whole', async () => {
    const layout = await streamLayout(masterFile)
    const reference = referenceGtids(masterFile)
    expect(reference.length).toBeGreaterThan(6)
    const out = join(mkdtempSync(join(tmpdir(), 'mha-holes-')), 'holes.binlog')
    const applied = [0, 1, 3, 5]
    await writeStreamWithout(masterFile, layout, applied, out)
    expect(referenceGtids(out).map((r) => r.gtid)).toEqual(reference.filter((_, i) => !applied.includes(i)).map((r) => r.gtid))
    const text = execFileSync(mariadbBinlog, ['--no-defaults', '--verify-binlog-checksum', out], {encoding: 'utf8'})
    expect(text.split('\n').filter((l) => l.startsWith('ROLLBACK') && !l.includes('added by mysqlbinlog'))).toEqual([])
    // Nothing applied: the same transactions as the stream itself.
    await writeStreamWithout(masterFile, layout, [], out)
    expect(referenceGtids(out).map((r) => r.gtid)).toEqual(reference.map((r) => r.gtid))
  })

  it('judges MySQL GTIDs by gtid_executed, and not at all with gtid_mode OFF', () => {
    const uuid = '3e11fa47-71ca-11e1-9e33-c80aa9429562'
    const layout = {
      transactions: [1n, 2n, 3n].map((gno, i) => ({start: 100 * i, end: 100 * i + 100, gtid: {flavor: 'mysql' as const, uuid, gno}, xid: true})),
      formats: [],
      unfinishedFrom: null,
    }
    expect(appliedPrefix(layout, mysqlExecuted({gtidMode: 'ON', executed: `${uuid.toUpperCase()}:1-2`}))).toMatchObject({count: 2, known: true})
    expect(appliedPrefix(layout, mysqlExecuted({gtidMode: 'ON', executed: `${uuid}:1-5`}))).toMatchObject({count: 3, known: true})
    expect(appliedPrefix(layout, mysqlExecuted({gtidMode: 'OFF', executed: ''}))).toMatchObject({count: 0, known: false})
    expect(appliedPrefix({...layout, transactions: [{start: 0, end: 10, gtid: null, xid: true}]}, mysqlExecuted({gtidMode: 'ON', executed: ''}))).toMatchObject({count: 0, known: false})
  })

  /** Each transaction's GTID as mariadb-binlog prints it, and whether it ends with an XID commit (`COMMIT/*!*\/;`). */
  function referenceCommits(file: string): Array<{gtid: string; xid: boolean}> {
    const text = execFileSync(mariadbBinlog, ['--no-defaults', file], {encoding: 'utf8'})
    return text
      .split(/\n#[^\n]*\tGTID /)
      .slice(1)
      .map((chunk) => ({gtid: /^\d+-\d+-\d+/.exec(chunk)![0], xid: chunk.split('\n').includes('COMMIT/*!*/;')}))
  }

  /** mariadb-binlog's output for a file, through a ProgressMarker fed in chunks of `size` bytes. */
  async function marked(file: string, size: number): Promise<{text: string; marker: ProgressMarker}> {
    const input = execFileSync(mariadbBinlog, ['--no-defaults', file])
    const marker = new ProgressMarker()
    const out: Buffer[] = []
    marker.on('data', (b: Buffer) => out.push(b))
    const ended = new Promise((resolve, reject) => (marker.on('end', resolve), marker.on('error', reject)))
    for (let at = 0; at < input.length; at += size) marker.write(input.subarray(at, at + size))
    marker.end()
    await ended
    return {text: Buffer.concat(out).toString('latin1'), marker}
  }

  it("knows which transactions end with an XID commit (where a progress mark can commit with them), as mariadb-binlog's output shows", async () => {
    const layout = await streamLayout(masterFile)
    const reference = referenceCommits(masterFile)
    expect(layout.transactions.map((t) => ({gtid: formatStreamGtid(t.gtid!), xid: t.xid}))).toEqual(reference)
    // The fixture has both kinds: InnoDB transactions, and DDL and MyISAM ones.
    expect(new Set(reference.map((r) => r.xid))).toEqual(new Set([true, false]))
  })

  it('adds, inside each XID transaction and before its commit, the mark of its GTID; changes nothing else', async () => {
    const reference = referenceCommits(masterFile)
    const original = execFileSync(mariadbBinlog, ['--no-defaults', masterFile]).toString('latin1')
    // Chunks of every size cut lines anywhere: the output is the same.
    for (const size of [1, 7, 100, 4096, 1 << 20]) {
      const {text, marker} = await marked(masterFile, size)
      const marks = [...text.matchAll(/^INSERT INTO mysql\.mha_applied_gtid \(domain_id, server_id, seq_no\) VALUES \((\d+), (\d+), (\d+)\) ON DUPLICATE KEY UPDATE seq_no = GREATEST\(seq_no, VALUES\(seq_no\)\)\n\/\*!\*\/;\nCOMMIT\/\*!\*\/;$/gm)].map((m) => `${m[1]}-${m[2]}-${m[3]}`)
      expect(marks).toEqual(reference.filter((r) => r.xid).map((r) => r.gtid))
      expect(marker.marks).toBe(marks.length)
      expect(text.replace(/^INSERT INTO mysql\.mha_applied_gtid [^\n]*\n\/\*!\*\/;\n/gm, '')).toBe(original)
    }
    expect(PROGRESS_TABLE).toBe('mysql.mha_applied_gtid')
  })

  it('fails the stream on a commit that no GTID came before, rather than letting it commit unmarked', async () => {
    const marker = new ProgressMarker()
    const failed = new Promise<Error>((resolve) => marker.on('error', resolve))
    marker.resume()
    marker.write('START TRANSACTION\n/*!*/;\nCOMMIT/*!*/;\n')
    expect((await failed).message).toMatch(/a commit with no GTID set before it/)
  })

  it('counts from the progress marks of a target without a binlog, and does not guess past a transaction that could not be marked', async () => {
    const layout = await streamLayout(masterFile)
    const gtids = layout.transactions.map((t) => formatStreamGtid(t.gtid!))
    // The last XID transaction followed by one that is not: whether that one committed is unknown.
    const beforeUnmarked = layout.transactions.findIndex((t, i) => t.xid && layout.transactions[i + 1]?.xid === false)
    const beforeMarked = layout.transactions.findIndex((t, i) => t.xid && layout.transactions[i + 1]?.xid === true)
    expect(beforeUnmarked).toBeGreaterThanOrEqual(0)
    expect(beforeMarked).toBeGreaterThanOrEqual(0)
    expect(appliedPrefix(layout, markedExecuted({marks: gtids[beforeMarked]!, slavePos: ''}), true)).toMatchObject({count: beforeMarked + 1, known: true})
    expect(appliedPrefix(layout, markedExecuted({marks: gtids[beforeUnmarked]!, slavePos: ''}), true)).toMatchObject({count: beforeUnmarked + 1, known: false})
    // Every transaction there: nothing after it to wonder about.
    expect(appliedPrefix(layout, markedExecuted({marks: gtids.at(-1)!, slavePos: ''}), true)).toMatchObject({count: gtids.length, known: true})
    // No marks: known only if the stream begins with an XID transaction.
    expect(appliedPrefix(layout, markedExecuted({marks: '', slavePos: ''}), true)).toMatchObject({count: 0, known: layout.transactions[0]!.xid})
  })

  /** Transactions of two MariaDB domains interleaved as a master writes them: (domain, seq, xid) each. */
  function twoDomains(rows: Array<[number, number, boolean?]>): StreamLayout {
    return {
      transactions: rows.map(([domain, seq, xid], i) => ({start: 100 * i, end: 100 * i + 100, gtid: {flavor: 'mariadb' as const, domain, serverId: 1, seq: BigInt(seq)}, xid: xid ?? true})),
      formats: [],
      unfinishedFrom: null,
    }
  }

  it('counts per GTID domain: a hole in a held domain stays to be applied when another domain committed past it', () => {
    const layout = twoDomains([[0, 1], [1, 1], [0, 2], [1, 2], [0, 3], [1, 3], [0, 4]])
    // Parallel replication held domain 1 at seq 1 and committed domain 0 on to seq 3.
    const held = appliedPrefix(layout, mariadbExecuted({logBin: true, binlogState: '', slavePos: '0-1-3,1-1-1'}))
    expect(held).toEqual({count: 4, known: true, applied: [0, 1, 2, 4]})
    // The same from the binlog state (log_slave_updates), per domain and server.
    expect(appliedPrefix(layout, mariadbExecuted({logBin: true, binlogState: '0-1-3,1-1-1', slavePos: ''}))).toEqual(held)
    // In order in every domain: one leading prefix, as before.
    expect(appliedPrefix(layout, mariadbExecuted({logBin: true, binlogState: '', slavePos: '0-1-3,1-1-2'}))).toEqual({count: 5, known: true, applied: [0, 1, 2, 3, 4]})
    // A domain the target has nothing of is applied whole.
    expect(appliedPrefix(layout, mariadbExecuted({logBin: true, binlogState: '', slavePos: '0-1-4'}))).toEqual({count: 4, known: true, applied: [0, 2, 4, 6]})
  })

  it('with progress marks, a hole that is not an XID transaction is not guessed: it may have committed unmarked', () => {
    // Domain 1's seq 2 is DDL: a stream that committed it left no mark.
    const layout = twoDomains([[0, 1], [1, 1], [0, 2], [1, 2, false], [0, 3], [1, 3]])
    expect(appliedPrefix(layout, markedExecuted({marks: '0-1-3', slavePos: '1-1-1'}), true)).toMatchObject({count: 4, known: false})
    // An XID hole is known to be missing: its mark would be there.
    const xidOnly = twoDomains([[0, 1], [1, 1], [0, 2], [1, 2], [0, 3], [1, 3]])
    expect(appliedPrefix(xidOnly, markedExecuted({marks: '0-1-3', slavePos: '1-1-1'}), true)).toEqual({count: 4, known: true, applied: [0, 1, 2, 4]})
  })

  it('counts MySQL GTIDs per source: a gap of one source is not covered by another source\'s later transaction', () => {
    const [a, b] = ['3e11fa47-71ca-11e1-9e33-c80aa9429562', '4f22fb58-82db-22f2-af44-d91bb953a673']
    const layout = {
      transactions: [
        [a, 1n],
        [b, 1n],
        [b, 2n],
        [a, 2n],
      ].map(([uuid, gno], i) => ({start: 100 * i, end: 100 * i + 100, gtid: {flavor: 'mysql' as const, uuid: uuid as string, gno: gno as bigint}, xid: true})),
      formats: [],
      unfinishedFrom: null,
    }
    expect(appliedPrefix(layout, mysqlExecuted({gtidMode: 'ON', executed: `${a}:1-2,${b}:1`}))).toEqual({count: 3, known: true, applied: [0, 1, 3]})
  })
})
