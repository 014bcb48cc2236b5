/** Edit distance between two words (insertions, deletions, substitutions). */
function distance(a: string, b: string): number {
  let previous = Array.from({length: b.length + 1}, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)))
    previous = current
  }
  return previous[b.length]!
}

/** The known command closest to what was typed, when it is close enough to be a typo. */
export function closestCommand(typed: string, known: readonly string[]): string | undefined {
  const ranked = known.map((id) => ({id, d: distance(typed, id)})).sort((x, y) => x.d - y.d || x.id.localeCompare(y.id))
  const best = ranked[0]
  return best && best.d <= Math.max(2, Math.floor(typed.length / 2)) ? best.id : undefined
}
