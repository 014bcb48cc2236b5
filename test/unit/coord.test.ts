import {chmodSync, mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {parseJournalLines} from '../../src/store/journal.js'
import {campaignDelayMs, rendezvousOrder} from '../../src/coord/ranking.js'
import {etcdSettings} from '../../src/coord/settings.js'

const dir = mkdtempSync(join(tmpdir(), 'mha-coord-'))
const file = (name: string, text: string, mode = 0o600) => {
  const path = join(dir, name)
  writeFileSync(path, text)
  chmodSync(path, mode)
  return path
}

describe('etcd settings from flags and the manager file', () => {
  it('is off without endpoints: one manager, the local lock', () => {
    expect(etcdSettings({}, {})).toBeUndefined()
  })

  it('reads endpoints, prefix, TTL and id from flags, with defaults', () => {
    const s = etcdSettings({etcd: 'http://127.0.0.1:2379, http://127.0.0.2:2379/', 'watcher-id': 'mgr-a'}, {})!
    expect(s).toMatchObject({endpoints: ['http://127.0.0.1:2379', 'http://127.0.0.2:2379'], prefix: '/mha', leaseTtlSeconds: 5, id: 'mgr-a', tls: undefined, auth: undefined})
  })

  it('reads a manager file, paths relative to it, the password from a private file and never shows it', () => {
    const password = file('etcd.password', 's3cret\n')
    const manager = file('manager.yaml', `id: mgr-b\netcd:\n  endpoints: [https://etcd1:2379, https://etcd2:2379]\n  prefix: /prod/mha/\n  lease_ttl: 7\n  ca_file: ca.pem\n  user: mha\n  password_file: etcd.password\n`)
    file('ca.pem', 'not a real certificate', 0o644)
    const s = etcdSettings({'manager-config': manager}, {})!
    expect(s.endpoints).toEqual(['https://etcd1:2379', 'https://etcd2:2379'])
    expect(s.prefix).toBe('/prod/mha')
    expect(s.leaseTtlSeconds).toBe(7)
    expect(s.id).toBe('mgr-b')
    expect(s.tls).toEqual({caFile: join(dir, 'ca.pem')})
    expect(s.auth?.user).toBe('mha')
    expect(s.auth?.password.reveal()).toBe('s3cret')
    expect(JSON.stringify(s)).not.toContain('s3cret')
    expect(password).toBeTruthy()
  })

  it('lets flags win over the file', () => {
    const manager = file('manager2.yaml', 'etcd:\n  endpoints: http://a:2379\n  lease_ttl: 9\n')
    expect(etcdSettings({'manager-config': manager, etcd: 'http://b:2379', 'etcd-lease-ttl': 3}, {})).toMatchObject({endpoints: ['http://b:2379'], leaseTtlSeconds: 3})
  })

  it('takes MHA_ETCD_ENDPOINTS when no flag or file names etcd', () => {
    expect(etcdSettings({}, {MHA_ETCD_ENDPOINTS: 'http://c:2379'})?.endpoints).toEqual(['http://c:2379'])
  })

  it.each([
    [{etcd: 'etcd1:2379'}, /--etcd: "etcd1:2379" is not an etcd endpoint; give http\(s\):\/\/HOST:PORT/],
    [{etcd: 'http://etcd1'}, /is not an etcd endpoint/],
    [{etcd: 'http://user:pw@etcd1:2379'}, /credentials go in --etcd-user and --etcd-password-file/],
    [{etcd: ''}, /--etcd: no etcd endpoint given/],
    [{etcd: 'http://a:2379', 'etcd-lease-ttl': 1}, /at least 2/],
    [{etcd: 'http://a:2379', 'etcd-prefix': 'mha'}, /must start with \//],
    [{etcd: 'https://a:2379', 'etcd-cert': '/x.pem'}, /needs both --etcd-cert and --etcd-key/],
    [{etcd: 'http://a:2379', 'etcd-ca': '/x.pem'}, /no endpoint is https/],
    [{etcd: 'http://a:2379', 'etcd-user': 'mha'}, /needs both --etcd-user and --etcd-password-file/],
    [{'etcd-prefix': '/x'}, /--etcd-prefix needs etcd: give --etcd URL/],
    [{etcd: 'http://a:2379', 'watcher-id': 'a b'}, /manager id "a b"/],
  ])('refuses %j in one line', (flags, message) => {
    expect(() => etcdSettings(flags, {})).toThrow(message)
  })

  it('refuses a password file others can read, and a manager file with unknown keys', () => {
    const open = file('open.password', 'x', 0o644)
    expect(() => etcdSettings({etcd: 'http://a:2379', 'etcd-user': 'mha', 'etcd-password-file': open}, {})).toThrow(/can be read by others \(mode 644\); run chmod 600/)
    const manager = file('bad.yaml', 'etcd:\n  endpoint: http://a:2379\n')
    expect(() => etcdSettings({'manager-config': manager}, {})).toThrow(/bad\.yaml: unknown key "etcd.endpoint"/)
    expect(() => etcdSettings({'manager-config': join(dir, 'missing.yaml')}, {})).toThrow(/missing\.yaml: no such manager file/)
  })
})

describe('leadership spread by rendezvous order', () => {
  const managers = ['w1', 'w2', 'w3']
  const clusters = Array.from({length: 3000}, (_, i) => `app${i}`)

  it('is the same order whatever order the managers are listed in', () => {
    for (const c of clusters.slice(0, 50)) expect(rendezvousOrder(c, ['w3', 'w1', 'w2'])).toEqual(rendezvousOrder(c, managers))
  })

  it('spreads 3000 clusters over 3 managers within 10% of a third each', () => {
    const counts = new Map<string, number>()
    for (const c of clusters) counts.set(rendezvousOrder(c, managers)[0]!, (counts.get(rendezvousOrder(c, managers)[0]!) ?? 0) + 1)
    for (const m of managers) expect(Math.abs(counts.get(m)! - 1000)).toBeLessThan(100)
  })

  it('moves only the clusters of a manager that leaves, each to its next preferred', () => {
    for (const c of clusters) {
      const before = rendezvousOrder(c, managers)
      const after = rendezvousOrder(c, ['w1', 'w3'])
      expect(after[0]).toBe(before[0] === 'w2' ? before[1] : before[0])
    }
  })

  it('lets the preferred manager campaign at once and the others after a pause per rank', () => {
    expect([0, 1, 2].map((rank) => campaignDelayMs(rank, 600))).toEqual([0, 600, 1200])
    expect(campaignDelayMs(-1, 600)).toBe(0)
  })
})

describe('journal lines, from a file or from etcd', () => {
  it('gives the last state of each step and the plan digest, ignoring a torn line', () => {
    const lines = [
      JSON.stringify({at: 't', step: '(plan)', event: 'plan', message: 'abc'}),
      JSON.stringify({at: 't', step: 'a', event: 'begin', by: 'w1'}),
      JSON.stringify({at: 't', step: 'a', event: 'end', outputs: {x: 1}, by: 'w1'}),
      JSON.stringify({at: 't', step: 'b', event: 'begin', by: 'w1'}),
      '{"at":"t","step":"b","ev',
    ]
    const {records, digest} = parseJournalLines(lines)
    expect(digest).toBe('abc')
    expect(records.get('a')).toEqual({state: 'done', outputs: {x: 1}, message: undefined})
    expect(records.get('b')?.state).toBe('begun')
  })
})
