import {describe, expect, it} from 'vitest'
import {LoopLag} from '../../src/watch/loop-lag.js'

describe('LoopLag: how late this process was while it looked', () => {
  it('the worst delay of the samples taken since a moment; older ones do not count', () => {
    const lag = new LoopLag()
    lag.record(1_000, 3)
    lag.record(1_050, 640)
    lag.record(1_700, 2)
    expect(lag.worstSince(1_040, 1_800)).toBe(640)
    expect(lag.worstSince(1_100, 1_800)).toBe(2)
    expect(lag.worstSince(2_000, 2_100)).toBe(0)
  })

  it('a delay under way counts at once: a sample overdue now means this very turn is late', async () => {
    const lag = new LoopLag(10).start()
    try {
      const since = performance.now()
      const until = since + 150
      while (performance.now() < until) {
        // The loop is blocked: no sample can be taken.
      }
      expect(lag.worstSince(since)).toBeGreaterThanOrEqual(100)
      await new Promise((r) => setTimeout(r, 30))
      expect(lag.worstSince(since)).toBeGreaterThanOrEqual(100)
    } finally {
      lag.stop()
    }
  })
})
