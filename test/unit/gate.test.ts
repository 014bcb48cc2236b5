import {describe, expect, it} from 'vitest'
import {Gate} from '../../src/watch/gate.js'

describe('Gate: at most so many at once', () => {
  it('runs the first `limit` at once, the others in order as turns come back, and gives every result', async () => {
    const gate = new Gate(2)
    const started: number[] = []
    const finish = new Map<number, () => void>()
    const work = (i: number) =>
      gate.run(async () => {
        started.push(i)
        await new Promise<void>((resolve) => finish.set(i, resolve))
        return i * 10
      })
    const all = [0, 1, 2, 3].map(work)
    await Promise.resolve()
    expect(started).toEqual([0, 1])
    expect(gate.waiting).toBe(2)
    finish.get(1)!()
    await new Promise((r) => setImmediate(r))
    expect(started).toEqual([0, 1, 2])
    finish.get(0)!()
    await new Promise((r) => setImmediate(r))
    expect(started).toEqual([0, 1, 2, 3])
    finish.get(2)!()
    finish.get(3)!()
    expect(await Promise.all(all)).toEqual([0, 10, 20, 30])
  })

  it('a work that fails gives its turn back too', async () => {
    const gate = new Gate(1)
    await expect(gate.run(() => Promise.reject(new Error('no')))).rejects.toThrow('no')
    expect(await gate.run(() => Promise.resolve('next'))).toBe('next')
  })
})
