import {describe, expect, it} from 'vitest'
import {waitWhileProgressing} from '../../src/steps/common.js'

// wait_timeout bounds lack of progress, not total time: each change of the probe's progress starts it again.
describe('waitWhileProgressing', () => {
  const idle = 200

  it('waits for a probe that keeps making progress for longer than the timeout', async () => {
    const started = Date.now()
    let looks = 0
    await waitWhileProgressing(
      'a moving position',
      idle,
      () => {
        looks++
        // A new position at every look; done only after three times the timeout.
        return Promise.resolve({done: Date.now() - started > 3 * idle, progress: `pos ${looks}`})
      },
      10,
    )
    expect(Date.now() - started).toBeGreaterThan(3 * idle)
  })

  it('fails a probe that stops making progress, naming where it stalled', async () => {
    const started = Date.now()
    let looks = 0
    // Moves for twice the timeout, then stays put and is never done.
    const probe = () => {
      looks++
      return Promise.resolve({done: false, progress: Date.now() - started < 2 * idle ? `pos ${looks}` : 'pos stuck'})
    }
    await expect(waitWhileProgressing('a stalled position', idle, probe, 10)).rejects.toThrow(/^no progress for 0 s waiting for a stalled position \(still at pos stuck\)$/)
    // It went on while the position moved: the stall, not the start, set the end.
    expect(Date.now() - started).toBeGreaterThan(2 * idle)
  })

  it('fails a probe that never moves', async () => {
    await expect(waitWhileProgressing('a position', idle, () => Promise.resolve({done: false, progress: 'pos 4'}), 10)).rejects.toThrow(/no progress .* \(still at pos 4\)/)
  })
})
