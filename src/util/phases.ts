// Where a command's time goes, from the process's start to its exit: with MHA_PHASES=1 each phase passed is
// printed on stderr at exit, as "phase <ms since the process started> <name>" (bench:startup reads them).
// Without it a phase costs one comparison.
const enabled = process.env.MHA_PHASES === '1'
const passed: [number, string][] = []

export function phase(name: string): void {
  if (!enabled) return
  if (passed.length === 0)
    process.once('exit', () => {
      passed.push([performance.now(), 'exit'])
      process.stderr.write(passed.map(([ms, n]) => `phase ${ms.toFixed(1)} ${n}\n`).join(''))
    })
  passed.push([performance.now(), name])
}
