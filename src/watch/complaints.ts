/** A complaint that lasts is said at once, then again after a growing pause (5 s, 10 s, ... 5 min): never silent, never a flood. */
export function complaintPauseMs(since: number, now: number): number {
  return Math.min(300_000, Math.max(5_000, (now - since) * 2))
}
