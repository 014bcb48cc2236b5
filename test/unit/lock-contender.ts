// One contender for the per-cluster lock, driven by test/unit/lock.test.ts over stdin, one command a line:
//   try <cluster> <at ms>   waits until the wall clock reads <at ms>, then takes the lock: prints "won <cluster>"
//                           or "lost <cluster> <why>"
//   release <cluster>       lets go of a lock it won: prints "released <cluster>"
// A real process each: the lock is between processes, so no contender shares the others' memory.
import {createInterface} from 'node:readline'
import {pathToFileURL} from 'node:url'

const modulePath = process.argv[2] ?? new URL('../../src/store/lock.ts', import.meta.url).pathname
const {lockCluster} = (await import(pathToFileURL(modulePath).href)) as {lockCluster: (cluster: string, purpose: string) => () => void}
const held = new Map<string, () => void>()

function attempt(cluster: string): string {
  try {
    held.set(cluster, lockCluster(cluster, `contender ${process.pid}`))
    return `won ${cluster}`
  } catch (error) {
    return `lost ${cluster} ${(error as Error).message}`
  }
}

for await (const line of createInterface({input: process.stdin})) {
  const [command, cluster = '', at] = line.split(' ')
  if (command === 'try') {
    const start = Number(at)
    if (start - Date.now() > 5) await new Promise((r) => setTimeout(r, start - Date.now() - 5))
    while (Date.now() < start);
    process.stdout.write(attempt(cluster) + '\n')
  } else if (command === 'release') {
    held.get(cluster)?.()
    held.delete(cluster)
    process.stdout.write(`released ${cluster}\n`)
  }
}
