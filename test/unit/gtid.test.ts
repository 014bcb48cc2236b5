import {describe, expect, it} from 'vitest'
import {
  compareMariadbPositions,
  formatMariadbGtidPos,
  formatMysqlGtidSet,
  mariadbErrant,
  mariadbMaxPerDomain,
  mariadbMissing,
  mostAdvancedMariadb,
  mysqlErrant,
  mysqlGtidCount,
  mysqlGtidIsSubset,
  mysqlGtidSubtract,
  mysqlGtidUnion,
  parseMariadbGtidPos,
  parseMysqlGtidSet,
} from '../../src/gtid/index.js'
import type {MariadbComparison, MostAdvancedMariadb} from '../../src/gtid/index.js'

const A = '3e11fa47-71ca-11e1-9e33-c80aa9429562'
const B = '4f22fb58-82db-22f2-af44-d91bb0530673'
const C = 'aa000000-0000-0000-0000-000000000001'

describe('parseMariadbGtidPos', () => {
  it.each([
    {text: '', gtids: []},
    {text: '  \n', gtids: []},
    {text: '0-1-100', gtids: [{domain: 0, serverId: 1, seq: 100n}]},
    {
      text: '0-1-100,1-2-50',
      gtids: [
        {domain: 0, serverId: 1, seq: 100n},
        {domain: 1, serverId: 2, seq: 50n},
      ],
    },
    {
      text: '0-1-100, 0-3-101,\n1-2-50',
      gtids: [
        {domain: 0, serverId: 1, seq: 100n},
        {domain: 0, serverId: 3, seq: 101n},
        {domain: 1, serverId: 2, seq: 50n},
      ],
    },
    {
      text: '4294967295-4294967295-18446744073709551615',
      gtids: [{domain: 4294967295, serverId: 4294967295, seq: 18446744073709551615n}],
    },
  ])('parses "$text"', ({text, gtids}) => {
    expect(parseMariadbGtidPos(text)).toEqual(gtids)
  })

  it.each([
    {text: '0-1', error: /"0-1" is not domain-server-seq/},
    {text: '0-1-100,', error: /"" is not domain-server-seq/},
    {text: '0-1-x', error: /"0-1-x"/},
    {text: '-1-1-1', error: /is not domain-server-seq/},
    {text: '0-1-1.5', error: /is not domain-server-seq/},
    {text: '4294967296-1-1', error: /domain id above/},
    {text: '0-4294967296-1', error: /server id above/},
    {text: '0-1-18446744073709551616', error: /sequence number above/},
    {text: '0-1-5,0-1-6', error: /repeats domain 0 server 1/},
  ])('rejects "$text"', ({text, error}) => {
    expect(() => parseMariadbGtidPos(text)).toThrow(error)
    expect(() => parseMariadbGtidPos(text)).toThrow(JSON.stringify(text))
  })
})

describe('formatMariadbGtidPos', () => {
  it.each([
    {text: '', formatted: ''},
    {text: '1-2-50,0-3-101,0-1-100', formatted: '0-1-100,0-3-101,1-2-50'},
    {text: ' 0-1-007 ', formatted: '0-1-7'},
  ])('formats "$text" as "$formatted"', ({text, formatted}) => {
    expect(formatMariadbGtidPos(parseMariadbGtidPos(text))).toBe(formatted)
  })
})

describe('mariadbMaxPerDomain', () => {
  it('keeps the highest seq of each domain, in domain order', () => {
    const max = mariadbMaxPerDomain('1-2-50,0-1-100,0-3-101,0-4-7')
    expect([...max.keys()]).toEqual([0, 1])
    expect(max.get(0)).toEqual({domain: 0, serverId: 3, seq: 101n})
    expect(max.get(1)).toEqual({domain: 1, serverId: 2, seq: 50n})
  })
})

describe('compareMariadbPositions', () => {
  const cases: {a: string; b: string; expected: MariadbComparison}[] = [
    {a: '', b: '', expected: 'equal'},
    {a: '0-1-100', b: '0-1-100', expected: 'equal'},
    {a: '0-1-100,1-2-50', b: '1-2-50,0-1-100', expected: 'equal'},
    {a: '0-1-101', b: '0-1-100', expected: 'ahead'},
    {a: '0-1-100', b: '0-1-101', expected: 'behind'},
    {a: '0-1-100', b: '', expected: 'ahead'},
    {a: '', b: '0-1-100', expected: 'behind'},
    {a: '0-1-100,1-2-5', b: '0-1-100', expected: 'ahead'},
    {a: '0-1-100', b: '0-1-100,1-2-5', expected: 'behind'},
    {a: '0-2-120', b: '0-1-100', expected: 'ahead'},
    {a: '0-1-100,0-2-120', b: '0-2-120', expected: 'equal'},
    {a: '0-1-101,1-2-5', b: '0-1-100,1-2-6', expected: 'diverged'},
    {a: '0-1-100,1-2-5', b: '0-1-100,2-3-1', expected: 'diverged'},
    {a: '0-1-100', b: '0-3-100', expected: 'diverged'},
  ]
  it.each(cases)('"$a" vs "$b" is $expected', ({a, b, expected}) => {
    expect(compareMariadbPositions(a, b)).toBe(expected)
  })
})

describe('mariadbMissing', () => {
  it.each([
    {a: '0-1-100', b: '0-1-100', missing: []},
    {a: '0-1-100', b: '0-1-90', missing: []},
    {a: '0-1-90', b: '0-1-100', missing: [{domain: 0, fromSeq: 90n, toSeq: 100n}]},
    {a: '', b: '1-2-5,0-1-3', missing: [{domain: 0, fromSeq: 0n, toSeq: 3n}, {domain: 1, fromSeq: 0n, toSeq: 5n}]},
    {a: '0-1-101,1-2-5', b: '0-1-100,1-2-6', missing: [{domain: 1, fromSeq: 5n, toSeq: 6n}]},
    {a: '0-1-90,0-3-95', b: '0-1-100', missing: [{domain: 0, fromSeq: 95n, toSeq: 100n}]},
  ])('"$a" lacks of "$b"', ({a, b, missing}) => {
    expect(mariadbMissing(a, b)).toEqual(missing)
  })
})

describe('mostAdvancedMariadb', () => {
  const cases: {title: string; positions: [string, string][]; expected: MostAdvancedMariadb}[] = [
    {
      title: 'one replica ahead of two',
      positions: [['db2', '0-1-100'], ['db3', '0-1-105'], ['db4', '0-1-98']],
      expected: {kind: 'found', names: ['db3']},
    },
    {
      title: 'two equal leaders',
      positions: [['db2', '0-1-105,1-2-7'], ['db3', '1-2-7,0-1-105'], ['db4', '0-1-98,1-2-7']],
      expected: {kind: 'found', names: ['db2', 'db3']},
    },
    {
      title: 'all equal',
      positions: [['db2', '0-1-5'], ['db3', '0-1-5'], ['db4', '0-1-5']],
      expected: {kind: 'found', names: ['db2', 'db3', 'db4']},
    },
    {
      title: 'ahead in different domains',
      positions: [['db2', '0-1-105,1-2-7'], ['db3', '0-1-100,1-2-9'], ['db4', '0-1-98,1-2-7']],
      expected: {kind: 'diverged', frontier: ['db2', 'db3']},
    },
    {
      title: 'a local write at the same seq as the master',
      positions: [['db2', '0-1-100'], ['db3', '0-3-100'], ['db4', '0-1-99']],
      expected: {kind: 'diverged', frontier: ['db2', 'db3']},
    },
    {title: 'a single replica', positions: [['db2', '0-1-1']], expected: {kind: 'found', names: ['db2']}},
  ]
  it.each(cases)('$title', ({positions, expected}) => {
    expect(mostAdvancedMariadb(positions.map(([name, pos]) => ({name, pos})))).toEqual(expected)
  })

  it('accepts parsed positions and refuses an empty list', () => {
    expect(mostAdvancedMariadb([{name: 'db2', pos: parseMariadbGtidPos('0-1-1')}])).toEqual({kind: 'found', names: ['db2']})
    expect(() => mostAdvancedMariadb([])).toThrow(/no GTID positions/)
  })
})

describe('mariadbErrant', () => {
  const master = '0-1-100'
  it.each([
    {title: 'caught up', replica: '0-1-100', others: [master, '0-1-98'], errant: []},
    {title: 'lagging', replica: '0-1-90', others: [master, '0-1-98'], errant: []},
    {title: 'ahead on the master stream', replica: '0-1-103', others: [master, '0-1-98'], errant: []},
    {
      title: 'local write in domain 0 by server 3 (gtid_binlog_pos)',
      replica: '0-1-100,0-3-101',
      others: [master, '0-1-100'],
      errant: ['0-3-101'],
    },
    {
      title: 'local write in domain 0 by server 3 (gtid_current_pos)',
      replica: '0-3-101',
      others: [master, '0-1-98'],
      errant: ['0-3-101'],
    },
    {
      title: 'local write at the seq the master also used',
      replica: '0-3-100',
      others: [master, '0-1-99'],
      errant: ['0-3-100'],
    },
    {
      title: 'local write in a domain nobody else has',
      replica: '0-1-100,7-3-4',
      others: [master, '0-1-100'],
      errant: ['7-3-4'],
    },
    {
      title: 'a write another replica already has',
      replica: '0-1-100,0-3-101',
      others: [master, '0-1-100,0-3-101'],
      errant: [],
    },
    {
      title: 'an old write of a former master that everyone has gone past',
      replica: '0-3-40,0-1-100',
      others: [master, '0-1-100'],
      errant: [],
    },
    {
      title: 'an old entry elsewhere does not excuse a new local write',
      replica: '0-3-101',
      others: [master, '0-3-40,0-1-100'],
      errant: ['0-3-101'],
    },
  ])('$title', ({replica, others, errant}) => {
    expect(formatMariadbGtidPos(mariadbErrant(replica, others))).toBe(errant.join(','))
  })

  it('needs something to compare against', () => {
    expect(() => mariadbErrant('0-1-1', [])).toThrow(/at least one/)
  })
})

describe('mariadbErrant from gtid_binlog_state (byServer)', () => {
  const master = 1
  it.each([
    {
      title: 'a local write followed by replicated transactions (gtid_binlog_pos shows only 0-1-100)',
      replica: '0-1-100,0-3-91',
      others: ['0-1-100', '0-1-98'],
      errant: ['0-3-91'],
    },
    {title: 'the dead master\'s transactions only this replica received', replica: '0-1-103', others: ['0-1-100', '0-1-98'], errant: []},
    {title: 'an earlier master\'s transactions every server has', replica: '0-5-40,0-1-100', others: ['0-5-40,0-1-100', '0-5-40,0-1-98'], errant: []},
    {title: 'an earlier master\'s transaction one other server has', replica: '0-5-40,0-1-100', others: ['0-1-100', '0-5-40,0-1-98'], errant: []},
    {title: 'a write another replica already has', replica: '0-1-100,0-3-91', others: ['0-1-100,0-3-91'], errant: []},
    {title: 'a later write of a server the others hold an older entry of', replica: '0-1-100,0-3-91', others: ['0-1-100,0-3-40'], errant: ['0-3-91']},
    {title: 'one errant domain among clean ones', replica: '0-1-100,1-2-9,1-3-5', others: ['0-1-100,1-2-9'], errant: ['1-3-5']},
    {title: 'a transaction of a server no other position knows', replica: '0-5-40,0-1-100', others: ['0-1-100'], errant: ['0-5-40']},
  ])('$title', ({replica, others, errant}) => {
    expect(formatMariadbGtidPos(mariadbErrant(replica, others, {byServer: true, masterServerId: master}))).toBe(errant.join(','))
  })

  it('by position alone, the local write hidden below a replicated transaction is not seen', () => {
    expect(mariadbErrant('0-1-100,0-3-91', ['0-1-100'])).toEqual([])
  })

  it('with the master unknown, the server last in a domain elsewhere may run ahead, and a local write is still found', () => {
    expect(formatMariadbGtidPos(mariadbErrant('0-1-103', ['0-1-100'], {byServer: true, masterServerId: null}))).toBe('')
    expect(formatMariadbGtidPos(mariadbErrant('0-1-103,0-3-91', ['0-1-100'], {byServer: true}))).toBe('0-3-91')
  })
})

describe('parseMysqlGtidSet and formatMysqlGtidSet', () => {
  it.each([
    {text: '', formatted: ''},
    {text: ' \n ', formatted: ''},
    {text: `${A}:1-5`, formatted: `${A}:1-5`},
    {text: `${A}:7`, formatted: `${A}:7`},
    {text: `${A.toUpperCase()}:1-5:7-9`, formatted: `${A}:1-5:7-9`},
    {text: `${B}:1-3,\n${A}:1-5`, formatted: `${A}:1-5,${B}:1-3`},
    {text: `${A}:1-5,${A}:6-9`, formatted: `${A}:1-9`},
    {text: `${A}:7-9:1-5:3-6`, formatted: `${A}:1-9`},
    {text: `${A}:5-5:1-2:4`, formatted: `${A}:1-2:4-5`},
    {text: `${A}:1-3:5-7`, formatted: `${A}:1-3:5-7`},
    {text: `  ${A} : 1 - 5 ,\n  ${B}:2`, formatted: `${A}:1-5,${B}:2`},
    {text: `${A}:9223372036854775807`, formatted: `${A}:9223372036854775807`},
    // Tagged GTIDs (MySQL 8.3+): untagged intervals first, then tags in order, under a single uuid.
    {text: `${A}:tag:1-5`, formatted: `${A}:tag:1-5`},
    {text: `${A}:Domain_2:8-52,${A}:Domain_1:1-3:15-21`, formatted: `${A}:domain_1:1-3:15-21:domain_2:8-52`},
    {text: `${A}:x:1,${A}:1-4,${B}:_b:2,${A}:abc:1-3`, formatted: `${A}:1-4:abc:1-3:x:1,${B}:_b:2`},
    {text: `${A}:1-4:aaaa:1:abc:1-3`, formatted: `${A}:1-4:aaaa:1:abc:1-3`},
  ])('"$text" is "$formatted"', ({text, formatted}) => {
    expect(formatMysqlGtidSet(parseMysqlGtidSet(text))).toBe(formatted)
  })

  it('parses into sources with bigint intervals', () => {
    expect(parseMysqlGtidSet(`${B}:3,${A}:1-5:7-9:t:2`)).toEqual([
      {uuid: A, tag: '', intervals: [{start: 1n, end: 5n}, {start: 7n, end: 9n}]},
      {uuid: A, tag: 't', intervals: [{start: 2n, end: 2n}]},
      {uuid: B, tag: '', intervals: [{start: 3n, end: 3n}]},
    ])
  })

  it('prints MySQL separators when asked', () => {
    expect(formatMysqlGtidSet(`${B}:1,${A}:2`, ',\n')).toBe(`${A}:2,\n${B}:1`)
  })

  it.each([
    {text: `${A}`, error: /has no interval/},
    {text: `${A}:`, error: /neither an interval nor a tag/},
    {text: `${A}:1-5,`, error: /"" does not start with a server uuid/},
    {text: `3e11fa47-71ca-11e1-9e33:1-5`, error: /does not start with a server uuid/},
    {text: `${A}:0-5`, error: /transaction number 0/},
    {text: `${A}:5-3`, error: /descending interval 5-3/},
    {text: `${A}:1-9223372036854775808`, error: /above 2\^63-1/},
    {text: `${A}:1-x`, error: /"1-x", neither an interval nor a tag/},
    {text: `${A}:tag`, error: /has no interval/},
    {text: `${A}:t1:t2:5`, error: /no interval for tag t1/},
    {text: `${A}:1tag:5`, error: /neither an interval nor a tag/},
    {text: `${A}:${'t'.repeat(33)}:5`, error: /neither an interval nor a tag/},
    {text: `${A}:1;${B}:2`, error: /neither an interval nor a tag/},
  ])('rejects "$text"', ({text, error}) => {
    expect(() => parseMysqlGtidSet(text)).toThrow(error)
    expect(() => parseMysqlGtidSet(text)).toThrow(JSON.stringify(text))
  })
})

describe('MySQL GTID set arithmetic', () => {
  it.each([
    {a: `${A}:1-10`, b: '', diff: `${A}:1-10`},
    {a: '', b: `${A}:1-10`, diff: ''},
    {a: `${A}:1-10`, b: `${A}:1-10`, diff: ''},
    {a: `${A}:1-10`, b: `${A}:3-5`, diff: `${A}:1-2:6-10`},
    {a: `${A}:1-10`, b: `${A}:5-20`, diff: `${A}:1-4`},
    {a: `${A}:5-10`, b: `${A}:1-6`, diff: `${A}:7-10`},
    {a: `${A}:1-10`, b: `${A}:1:3:5-6:10`, diff: `${A}:2:4:7-9`},
    {a: `${A}:1-5:8-12`, b: `${A}:4-9`, diff: `${A}:1-3:10-12`},
    {a: `${A}:1-5`, b: `${A}:6-10`, diff: `${A}:1-5`},
    {a: `${A}:1-5,${B}:1-3`, b: `${B}:1-3`, diff: `${A}:1-5`},
    {a: `${A}:1-5:t:1-5`, b: `${A}:1-5`, diff: `${A}:t:1-5`},
    {a: `${A}:1-5:t:1-5`, b: `${A}:T:2-3`, diff: `${A}:1-5:t:1:4-5`},
  ])('$a − $b = $diff', ({a, b, diff}) => {
    expect(formatMysqlGtidSet(mysqlGtidSubtract(a, b))).toBe(diff)
  })

  it.each([
    {sets: [`${A}:1-5`, `${A}:6-10`], union: `${A}:1-10`},
    {sets: [`${A}:1-5`, `${A}:7-10`], union: `${A}:1-5:7-10`},
    {sets: [`${A}:1-5`, `${A}:3-8`], union: `${A}:1-8`},
    {sets: [`${A}:1-5`, `${A}:2-3`], union: `${A}:1-5`},
    {sets: [`${B}:1-5`, `${A}:1-2`, ''], union: `${A}:1-2,${B}:1-5`},
    {sets: [`${A}:1`, `${A}:t:1`, `${A}:3`, `${A}:2`], union: `${A}:1-3:t:1`},
    {sets: [], union: ''},
  ])('union of $sets is $union', ({sets, union}) => {
    expect(formatMysqlGtidSet(mysqlGtidUnion(...sets))).toBe(union)
  })

  it.each([
    {a: '', b: '', subset: true},
    {a: '', b: `${A}:1`, subset: true},
    {a: `${A}:1`, b: '', subset: false},
    {a: `${A}:2-4`, b: `${A}:1-5`, subset: true},
    {a: `${A}:1-5`, b: `${A}:1-5`, subset: true},
    {a: `${A}:1-5`, b: `${A}:1-4`, subset: false},
    {a: `${A}:1-6`, b: `${A}:1-3:4-6`, subset: true},
    {a: `${A}:1-6`, b: `${A}:1-3:5-6`, subset: false},
    {a: `${A}:1-5`, b: `${B}:1-5`, subset: false},
    {a: `${A}:t:1-5`, b: `${A}:1-5`, subset: false},
    {a: `${A}:1-5,${B}:1`, b: `${B}:1-9,${A}:1-9,${C}:1`, subset: true},
  ])('$a ⊆ $b is $subset', ({a, b, subset}) => {
    expect(mysqlGtidIsSubset(a, b)).toBe(subset)
  })

  it.each([
    {set: '', count: 0n},
    {set: `${A}:1`, count: 1n},
    {set: `${A}:1-5:7-9,${B}:1-3`, count: 11n},
    {set: `${A}:1-5:t:1-5`, count: 10n},
    {set: `${A}:1-9223372036854775807`, count: 9223372036854775807n},
  ])('$set holds $count', ({set, count}) => {
    expect(mysqlGtidCount(set)).toBe(count)
  })

  it('works on parsed sets, in any order and case', () => {
    const parsed = [{uuid: B.toUpperCase(), tag: '', intervals: [{start: 4n, end: 6n}, {start: 1n, end: 3n}]}]
    expect(formatMysqlGtidSet(parsed)).toBe(`${B}:1-6`)
    expect(mysqlGtidIsSubset(parsed, `${B}:1-6`)).toBe(true)
  })
})

describe('mysqlErrant', () => {
  const master = `${A}:1-100`
  it.each([
    {title: 'caught up', replica: `${A}:1-100`, others: [master, `${A}:1-98`], errant: ''},
    {title: 'ahead of the master last seen', replica: `${A}:1-103`, others: [master, `${A}:1-103`], errant: ''},
    {title: 'local write', replica: `${A}:1-100,${C}:1-2`, others: [master, `${A}:1-98`], errant: `${C}:1-2`},
    {
      title: 'a write another replica has is not errant, the rest is',
      replica: `${A}:1-100,${B}:1-5,${C}:1`,
      others: [master, `${A}:1-99,${B}:1-5`],
      errant: `${C}:1`,
    },
    {
      title: 'master transactions beyond its last known set count too',
      replica: `${A}:1-105`,
      others: [master, `${A}:1-100`],
      errant: `${A}:101-105`,
    },
  ])('$title', ({replica, others, errant}) => {
    expect(formatMysqlGtidSet(mysqlErrant(replica, others))).toBe(errant)
  })

  it('needs something to compare against', () => {
    expect(() => mysqlErrant(`${A}:1`, [])).toThrow(/at least one/)
  })
})
