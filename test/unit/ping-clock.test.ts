import {afterEach, beforeEach, describe, expect, it, vi} from 'vitest'
import {PingClock} from '../../src/watch/ping-clock.js'

beforeEach(() => {
  vi.useFakeTimers()
  vi.setSystemTime(7003)
})
afterEach(() => {
  vi.useRealTimers()
})

describe('the ping clock: clusters due at the next multiple of their interval, from one timer', () => {
  it('runs every cluster waiting on an interval at its next multiple, once, from a single timer', () => {
    const clock = new PingClock(() => Date.now())
    const ran: string[] = []
    clock.at(1000, () => ran.push('a'))
    clock.at(1000, () => ran.push('b'))
    clock.at(3000, () => ran.push('slow'))
    expect(vi.getTimerCount()).toBe(2)
    expect(clock.waiting).toBe(3)
    vi.advanceTimersByTime(996)
    expect(ran).toEqual([])
    vi.advanceTimersByTime(1)
    expect(ran).toEqual(['a', 'b'])
    vi.advanceTimersByTime(2000)
    expect(ran).toEqual(['a', 'b', 'slow'])
    expect(vi.getTimerCount()).toBe(0)
    expect(clock.waiting).toBe(0)
  })

  it('forgets a cluster that leaves (stopped, or woken to look now), and its timer with the last one', () => {
    const clock = new PingClock(() => Date.now())
    const ran: string[] = []
    const a = () => ran.push('a')
    const b = () => ran.push('b')
    clock.at(1000, a)
    clock.at(1000, b)
    clock.cancel(1000, a)
    vi.advanceTimersByTime(1000)
    expect(ran).toEqual(['b'])
    clock.at(1000, a)
    clock.cancel(1000, a)
    expect(vi.getTimerCount()).toBe(0)
    // A cluster that registers again from its own run waits for the next multiple, not this one.
    const again = () => {
      ran.push('again')
      if (ran.length < 4) clock.at(1000, again)
    }
    clock.at(1000, again)
    // 8003 now: due at 9000; run there, it asks again for 10000.
    vi.advanceTimersByTime(1000)
    expect(ran).toEqual(['b', 'again'])
    vi.advanceTimersByTime(996)
    expect(ran).toEqual(['b', 'again'])
    vi.advanceTimersByTime(1)
    expect(ran).toEqual(['b', 'again', 'again'])
  })
})
