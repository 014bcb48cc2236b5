import {describe, expect, it} from 'vitest'
import {judge, type Observation} from '../../src/watch/judge.js'

const down = {ok: false as const, kind: 'unreachable' as const, message: 'db1 (10.0.0.1:3306): cannot connect (ECONNREFUSED)'}
const replica = (name: string, ioThread: 'running' | 'connecting' | 'stopped' | null, reachable = true) => ({name, reachable, ioThread, lastIoError: ioThread === 'connecting' ? "error reconnecting to master 'repl@10.0.0.1:3306'" : ''})
const look = (over: Partial<Observation>): Observation => ({master: down, replicas: [], sshReachable: null, ...over})

describe('judge: when is a master dead', () => {
  it('a master that answers is healthy, and one refusing logins is alive', () => {
    expect(judge(look({master: {ok: true}}), 0, 2)).toEqual({state: 'healthy'})
    expect(judge(look({master: {ok: false, kind: 'auth', message: 'db1: access denied'}}), 5, 2).state).toBe('refusing')
    expect(judge(look({master: {ok: false, kind: 'too_many_connections', message: 'db1: too many connections'}}), 5, 2).state).toBe('refusing')
  })

  it('a few failures are only suspect', () => {
    expect(judge(look({}), 1, 2)).toMatchObject({state: 'suspect', failures: 1})
  })

  it('is dead only when the replicas lost it too', () => {
    const v = judge(look({replicas: [replica('db2', 'connecting'), replica('db3', 'connecting')], sshReachable: true}), 2, 2)
    expect(v.state).toBe('dead')
    expect(v.state === 'dead' && v.reason).toMatch(/cannot connect \(ECONNREFUSED\) after 2 tries, and db2 \(IO thread connecting\), db3 \(IO thread connecting\) lost it too; its host still answers SSH$/)
  })

  it('a master that replicas still stream from is a network problem', () => {
    const v = judge(look({replicas: [replica('db2', 'running'), replica('db3', 'connecting')]}), 9, 2)
    expect(v).toMatchObject({state: 'network'})
    expect(v.state === 'network' && v.reason).toMatch(/db2 still replicates from it/)
  })

  it('with no replica answering, mha does not fail over', () => {
    expect(judge(look({replicas: [replica('db2', null, false)]}), 9, 2).state).toBe('network')
  })

  const route = (via: string, verdict: 'reachable' | 'unreachable' | 'route_down') => ({via, verdict, detail: `${via}: ${verdict}`})
  const timeout = {ok: false as const, kind: 'timeout' as const, message: 'db1 (10.0.0.1:3306): no answer in 2 s'}

  it('a host gone without a reset: the IO threads still say Yes, but when no route reaches the master it is dead', () => {
    const v = judge(look({master: timeout, replicas: [replica('db2', 'running'), replica('db3', 'running')], secondOpinion: {routes: [route('db2', 'unreachable'), route('db3', 'unreachable')], hook: null}}), 2, 2)
    expect(v.state).toBe('dead')
    expect(v.state === 'dead' && v.reason).toMatch(/db2, db3 still show an IO thread, but no route reaches it: db2: unreachable; db3: unreachable/)
  })

  it('one route that still reaches the master, or one that could not be tried, keeps it a network problem', () => {
    const streaming = [replica('db2', 'running'), replica('db3', 'running')]
    expect(judge(look({master: timeout, replicas: streaming, secondOpinion: {routes: [route('db2', 'unreachable'), route('db3', 'reachable')], hook: null}}), 2, 2)).toMatchObject({state: 'network'})
    expect(judge(look({master: timeout, replicas: streaming, secondOpinion: {routes: [route('db2', 'unreachable'), route('db3', 'route_down')], hook: null}}), 2, 2)).toMatchObject({state: 'network'})
    expect(judge(look({master: timeout, replicas: streaming, secondOpinion: {routes: [], hook: null}}), 2, 2)).toMatchObject({state: 'network'})
  })

  it("the user's secondary_check hook has the last word, as in MHA: only exit 0 (down everywhere) fails over", () => {
    const lost = [replica('db2', 'connecting')]
    for (const verdict of ['reachable', 'route_down', 'error'] as const)
      expect(judge(look({replicas: lost, secondOpinion: {routes: [], hook: {verdict, detail: 'secondary_check exited 3'}}}), 2, 2)).toMatchObject({state: 'network'})
    expect(judge(look({replicas: lost, secondOpinion: {routes: [], hook: {verdict: 'down', detail: 'secondary_check exited 0'}}}), 2, 2)).toMatchObject({state: 'dead'})
  })
})
