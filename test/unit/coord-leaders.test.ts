import {describe, expect, it} from 'vitest'
import {LeaderView, type LeaderEvent} from '../../src/coord/leaders.js'

/**
 * Who leads each cluster, from one full read of leaders/ and the watch on it after: a round costs etcd nothing per
 * cluster. A full read answered after the watch told newer changes must not undo them, and a watch event still on
 * its way when a newer full read was applied must not undo that read.
 */
const kv = (cluster: string, id: string, create: number, mod = create, lease = '9') => ({key: Buffer.from(`/p/leaders/${cluster}`), value: Buffer.from(JSON.stringify({id, since: 'x'})), create_revision: String(create), mod_revision: String(mod), lease, version: '1'})
const put = (cluster: string, id: string, create: number, mod = create): LeaderEvent => ({type: 'put', kv: kv(cluster, id, create, mod)})
const del = (cluster: string, at: number): LeaderEvent => ({type: 'delete', kv: {key: Buffer.from(`/p/leaders/${cluster}`), value: Buffer.alloc(0), create_revision: '0', mod_revision: String(at), lease: '0', version: '0'}})

function view(): {v: LeaderView; changes: string[]; leaders: () => Record<string, string>} {
  const v = new LeaderView('/p/leaders/')
  const changes: string[] = []
  v.onChange = (cluster, before, after) => changes.push(`${cluster}:${before?.id ?? '-'}>${after?.id ?? '-'}`)
  return {v, changes, leaders: () => Object.fromEntries([...v.entries()].map(([c, l]) => [c, l.id]))}
}

describe('LeaderView', () => {
  it('takes a full read, then the watch, and tells each change once', () => {
    const {v, changes, leaders} = view()
    v.applySnapshot([kv('a', 'w1', 5), kv('b', 'w2', 6)], 10n)
    v.applyEvents([del('a', 11), put('a', 'w3', 12), put('c', 'w1', 13)])
    expect(leaders()).toEqual({a: 'w3', b: 'w2', c: 'w1'})
    expect(v.get('a')).toEqual({id: 'w3', createRevision: '12', lease: '9'})
    expect(changes).toEqual(['a:->w1', 'b:->w2', 'a:w1>-', 'a:->w3', 'c:->w1'])
    // The same keys read again: nothing changed, nothing told.
    v.applySnapshot([kv('a', 'w3', 12), kv('b', 'w2', 6), kv('c', 'w1', 13)], 13n)
    expect(changes).toHaveLength(5)
  })

  it('keeps what the watch told after the revision of a full read answered late', () => {
    const {v, leaders} = view()
    v.applySnapshot([kv('a', 'w1', 5)], 10n)
    // The read is sent at revision 20; meanwhile the watch tells a delete at 21 and a new leader at 22.
    v.applyEvents([del('a', 21), put('b', 'w2', 22)])
    v.applySnapshot([kv('a', 'w1', 5)], 20n)
    expect(leaders()).toEqual({b: 'w2'})
  })

  it('drops a watch event older than the full read applied, and a full read older than one applied', () => {
    const {v, leaders} = view()
    v.applySnapshot([kv('b', 'w2', 30)], 30n)
    // A put at 25 still on its way: the read at 30 already shows what came of it (a deleted since).
    v.applyEvents([put('a', 'w1', 25)])
    expect(leaders()).toEqual({b: 'w2'})
    v.applySnapshot([kv('a', 'w1', 25)], 26n)
    expect(leaders()).toEqual({b: 'w2'})
  })

  it('puts right what a lost watch missed: keys gone and keys come', () => {
    const {v, changes, leaders} = view()
    v.applySnapshot([kv('a', 'w1', 5), kv('b', 'w1', 6)], 10n)
    v.applySnapshot([kv('b', 'w2', 40), kv('c', 'w3', 41)], 50n)
    expect(leaders()).toEqual({b: 'w2', c: 'w3'})
    expect(changes.slice(2)).toEqual(['a:w1>-', 'b:w1>w2', 'c:->w3'])
  })

  it('ignores keys outside its prefix and values that name no leader', () => {
    const {v, leaders} = view()
    v.applySnapshot([kv('a', 'w1', 5), {...kv('x', 'w1', 6), key: Buffer.from('/q/leaders/x')}, {...kv('y', 'w1', 7), value: Buffer.from('not json')}], 10n)
    expect(leaders()).toEqual({a: 'w1'})
  })
})
