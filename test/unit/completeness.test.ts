import {describe, expect, it} from 'vitest'
import {comparableByGtid, coordinatesShortfall, describeShortfall, shortfall, type HeldAtPromotion, type SurvivorRecord} from '../../src/recovery/completeness.js'

const mariadbHeld = (binlogState: string, slavePos = '', serverId = 2): HeldAtPromotion => ({flavor: 'mariadb', serverId, binlogState, slavePos})
const mariadbSurvivor = (binlogState: string, slavePos = '', extra: Partial<Extract<SurvivorRecord, {flavor: 'mariadb'}>> = {}): SurvivorRecord => ({flavor: 'mariadb', logBin: true, binlogState, slavePos, marks: null, ...extra})

describe('the final check: what a survivor lacks of what the new master held at its promotion', () => {
  it('MariaDB: the saved tail applied on the new master only (binlog state ahead) is lacking on the survivor, with the count', () => {
    const gap = shortfall(mariadbHeld('0-1-432', '0-1-266'), mariadbSurvivor('0-1-266', '0-1-266'))
    expect(gap).toEqual({lacking: '0-1-432', transactions: 166n})
    expect(describeShortfall('db3', 'db2', gap)).toBe('db3 lacks 166 transactions, up to 0-1-432, that db2 held when it was promoted')
  })

  it('MariaDB: a survivor that holds as much, or more, lacks nothing', () => {
    expect(shortfall(mariadbHeld('0-1-432'), mariadbSurvivor('0-1-432')).lacking).toBe('')
    expect(shortfall(mariadbHeld('0-1-432'), mariadbSurvivor('', '0-1-500')).lacking).toBe('')
    // Replicated by its SQL thread (gtid_slave_pos) with log_slave_updates off: the domain's seq tells.
    expect(shortfall(mariadbHeld('0-1-432', '0-1-432'), mariadbSurvivor('', '0-1-432')).lacking).toBe('')
  })

  it("MariaDB: each domain on its own; the new master's own server id is not asked of the survivor", () => {
    const held = mariadbHeld('0-1-100,1-1-50,0-2-7', '0-1-100,1-1-50')
    expect(shortfall(held, mariadbSurvivor('0-1-100,1-1-40')).lacking).toBe('1-1-50')
    expect(shortfall(held, mariadbSurvivor('0-1-100,1-1-50')).lacking).toBe('')
  })

  it("MariaDB without a binlog: mha's progress marks count, a missing table does not hide a gap", () => {
    const held = mariadbHeld('0-1-300', '0-1-200')
    expect(shortfall(held, mariadbSurvivor('', '0-1-200', {logBin: false, marks: '0-1-300'})).lacking).toBe('')
    expect(shortfall(held, mariadbSurvivor('', '0-1-200', {logBin: false, marks: '0-1-250'})).lacking).toBe('0-1-300')
    expect(shortfall(held, mariadbSurvivor('', '0-1-200', {logBin: false, marks: null})).lacking).toBe('0-1-300')
  })

  it('MySQL: the GTID set difference, less the new master uuid; gtid_mode OFF is not comparable', () => {
    const a = '3e11fa47-71ca-11e1-9e33-c80aa9429562'
    const b = '4f22fa47-71ca-11e1-9e33-c80aa9429562'
    const held: HeldAtPromotion = {flavor: 'mysql', uuid: b, gtidMode: 'ON', executed: `${a}:1-500,${b}:1-3`}
    const survivor: SurvivorRecord = {flavor: 'mysql', gtidMode: 'ON', executed: `${a}:1-400`}
    expect(comparableByGtid(held, survivor)).toBe(true)
    expect(shortfall(held, survivor)).toEqual({lacking: `${a}:401-500`, transactions: 100n})
    expect(shortfall(held, {...survivor, executed: `${a}:1-500`}).lacking).toBe('')
    expect(comparableByGtid({...held, gtidMode: 'OFF'}, {...survivor, gtidMode: 'OFF'})).toBe(false)
    expect(comparableByGtid(held, mariadbSurvivor('0-1-1'))).toBe(false)
  })

  it('file/position: a survivor whose recovery stopped short of the new master in the dead master binlog is named', () => {
    const newMaster = {file: 'mysql-bin.000002', pos: 9000}
    expect(coordinatesShortfall('db3', {file: 'mysql-bin.000002', pos: 9000}, 'db2', newMaster, 'db1')).toBeNull()
    expect(coordinatesShortfall('db3', {file: 'mysql-bin.000003', pos: 4}, 'db2', newMaster, 'db1')).toBeNull()
    expect(coordinatesShortfall('db3', {file: 'mysql-bin.000001', pos: 99999}, 'db2', newMaster, 'db1')).toBe(
      "db3 holds db1's binlog up to mysql-bin.000001:99999 only, db2 up to mysql-bin.000002:9000: db3 lacks the events between",
    )
  })
})
