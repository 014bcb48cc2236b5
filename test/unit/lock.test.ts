import {spawn, spawnSync} from 'node:child_process'
import {chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {createInterface} from 'node:readline'
import {afterAll, describe, expect, it} from 'vitest'

// The lock directory is read once at import, so each case runs in a fresh process.
const dir = mkdtempSync(join(tmpdir(), 'mha-lock-'))
const made = [dir]
afterAll(() => {
  for (const d of made) rmSync(d, {recursive: true, force: true})
})
const script = (body: string, lockDir = dir) =>
  spawnSync(process.execPath, ['--import', 'tsx', '-e', `import {lockCluster, lockManager} from './src/store/lock.ts'; ${body}`], {
    cwd: join(import.meta.dirname, '../..'),
    env: {...process.env, MHA_LOCK_DIR: lockDir},
    encoding: 'utf8',
  })

describe('per-cluster lock', () => {
  it('refuses a second holder while the first lives, and takes over a dead one', () => {
    const held = script(`lockCluster('c1', 'first'); try { lockCluster('c1', 'second'); console.log('taken twice') } catch (e) { console.log(e.message) }`)
    expect(held.stdout).toMatch(/^cluster c1 is locked by pid \d+ \(first, since .*\); wait for it to finish/)
    writeFileSync(join(dir, 'c2.lock'), JSON.stringify({pid: 999999, purpose: 'crashed apply', since: 'then'}))
    const stale = script(`const unlock = lockCluster('c2', 'after a crash'); console.log('locked'); unlock(); lockCluster('c2', 'again'); console.log('relocked')`)
    expect(stale.stdout.trim().split('\n')).toEqual(['locked', 'relocked'])
  })

  it('does not honour a lock whose pid now belongs to another program', () => {
    // Pid 1 lives, but it is not the process that wrote this lock (its start time differs).
    writeFileSync(join(dir, 'c3.lock'), JSON.stringify({pid: 1, started: '1', purpose: 'an apply long gone', since: 'then'}))
    const taken = script(`lockCluster('c3', 'now'); console.log('locked')`)
    expect(taken.stdout.trim()).toBe('locked')
    // The same pid with its real start time does hold it.
    const started = readFileSync('/proc/1/stat', 'utf8').split(') ')[1]!.split(' ')[19]
    writeFileSync(join(dir, 'c4.lock'), JSON.stringify({pid: 1, started, purpose: 'pid one', since: 'then'}))
    expect(script(`try { lockCluster('c4', 'now'); console.log('taken') } catch (e) { console.log(e.message) }`).stdout).toMatch(/^cluster c4 is locked by pid 1 \(pid one/)
  })

  it('one manager per cluster: a second is refused naming the first; a killed one, even not yet reaped (a zombie), holds nothing', async () => {
    const held = script(`lockManager('m1', 'mha watch of /etc/mha/m1.yaml'); try { lockManager('m1', 'mha watch of other.yaml'); console.log('taken twice') } catch (e) { console.log(e.message) }`)
    expect(held.stdout).toMatch(/^cluster m1 is already watched by pid \d+ \(mha watch of \/etc\/mha\/m1\.yaml, since \S+\); stop that watch first \(kill \d+\), or run every manager with --etcd/)
    // A child that exits under a parent that never reaps it stays a zombie with its pid and start time in /proc.
    const parent = spawn('sh', ['-c', 'sh -c \'echo $$\' & exec sleep 30'], {stdio: ['ignore', 'pipe', 'ignore']})
    const pid = Number(await new Promise<string>((resolve) => parent.stdout.once('data', (d: Buffer) => resolve(d.toString().trim()))))
    try {
      let stat = ''
      for (let i = 0; i < 100 && !stat.includes(') Z '); i++) {
        stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
        await new Promise((r) => setTimeout(r, 20))
      }
      expect(stat).toContain(') Z ')
      const started = stat.split(') ')[1]!.split(' ')[19]
      writeFileSync(join(dir, 'm2.manager.lock'), JSON.stringify({pid, started, purpose: 'mha watch killed', since: 'then'}))
      const taken = script(`lockManager('m2', 'next watch'); console.log('watching')`)
      expect(taken.stdout.trim(), taken.stderr).toBe('watching')
    } finally {
      parent.kill('SIGKILL')
    }
  })

  it('refuses a lock folder other users can write', () => {
    const shared = mkdtempSync(join(tmpdir(), 'mha-lock-shared-'))
    made.push(shared)
    chmodSync(shared, 0o777)
    const result = script(`try { lockCluster('c5', 'now'); console.log('locked') } catch (e) { console.log(e.message) }`, shared)
    expect(result.stdout.trim()).toBe(`lock folder ${shared} can be written by other users (mode 777); run chmod 700 ${shared} or set MHA_LOCK_DIR`)
    expect(existsSync(join(shared, 'c5.lock'))).toBe(false)
  })
})

/** A contender process (test/unit/lock-contender.ts), driven a line at a time. */
function contender(lockDir: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'lock-contender.ts')], {
    cwd: join(import.meta.dirname, '../..'),
    env: {...process.env, MHA_LOCK_DIR: lockDir},
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  const waiting: ((line: string) => void)[] = []
  const queued: string[] = []
  createInterface({input: child.stdout}).on('line', (line) => {
    const next = waiting.shift()
    if (next) next(line)
    else queued.push(line)
  })
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()))
  return {
    pid: child.pid!,
    ask(command: string): Promise<string> {
      const answer = new Promise<string>((resolve) => {
        const line = queued.shift()
        if (line === undefined) waiting.push(resolve)
        else resolve(line)
      })
      child.stdin.write(command + '\n')
      return answer
    },
    end: () => {
      child.stdin.end()
      return exited
    },
  }
}

const deadHolder = JSON.stringify({pid: 999999, started: '1', purpose: 'an apply that crashed', since: 'then'})

describe('a stale lock raced for', () => {
  it('is won by exactly one of four processes started together, a hundred times over', async () => {
    const race = mkdtempSync(join(tmpdir(), 'mha-lock-race-'))
    made.push(race)
    const contenders = Array.from({length: 4}, () => contender(race))
    try {
      const winners: number[] = []
      for (let round = 0; round < 100; round++) {
        const cluster = `round${round}`
        writeFileSync(join(race, `${cluster}.lock`), deadHolder)
        // All four take the lock at the same wall-clock millisecond, and the winner holds it until all answered.
        const at = Date.now() + 40
        const answers = await Promise.all(contenders.map((c) => c.ask(`try ${cluster} ${at}`)))
        const won = contenders.filter((_, i) => answers[i] === `won ${cluster}`)
        expect(won.length, `round ${round}: ${answers.join(' | ')}`).toBe(1)
        // The others were told who holds it: the winner, not the dead apply.
        for (const [i, answer] of answers.entries())
          if (contenders[i] !== won[0]) expect(answer).toMatch(new RegExp(`^lost ${cluster} cluster ${cluster} is locked by pid ${won[0]!.pid} \\(contender ${won[0]!.pid}, since `))
        winners.push(won[0]!.pid)
        await Promise.all(contenders.map((c) => c.ask(`release ${cluster}`)))
        // Nothing is left beside it: no lock, no takeover guard, no holder record.
        expect(readdirSync(race)).toEqual([])
      }
      // Not one process winning every round by being first to start: the race was a race.
      expect(new Set(winners).size).toBeGreaterThan(1)
    } finally {
      await Promise.all(contenders.map((c) => c.end()))
    }
  }, 120_000)

  it('is taken over even when a process died in the middle of taking it over (its guard left behind)', () => {
    const crashed = mkdtempSync(join(tmpdir(), 'mha-lock-crashed-'))
    made.push(crashed)
    const lock = join(crashed, 'c6.lock')
    writeFileSync(lock, deadHolder)
    // The guard a dead contender created for this very lock file (named after its inode), and its guard's guard.
    const guard = `${lock}.takeover-${statSync(lock).ino}`
    writeFileSync(guard, deadHolder)
    writeFileSync(`${guard}.takeover-${statSync(guard).ino}`, deadHolder)
    const result = script(`const unlock = lockCluster('c6', 'after two crashes'); import {readFileSync} from 'node:fs'; console.log(JSON.parse(readFileSync(${JSON.stringify(lock)}, 'utf8')).purpose); unlock()`, crashed)
    expect(result.stderr).toBe('')
    expect(result.stdout.trim()).toBe('after two crashes')
    expect(readdirSync(crashed)).toEqual([])
  })

  it('a live holder is never displaced, whatever takeover guard lies beside its lock', () => {
    const live = mkdtempSync(join(tmpdir(), 'mha-lock-live-'))
    made.push(live)
    const result = script(
      `import * as fs from 'node:fs'; import {spawnSync} from 'node:child_process'; lockCluster('c7', 'holder'); const lock = ${JSON.stringify(join(live, 'c7.lock'))}; fs.writeFileSync(lock + '.takeover-' + fs.statSync(lock).ino, ${JSON.stringify(deadHolder)});` +
        ` const child = spawnSync(process.execPath, ['--import', 'tsx', '-e', "import {lockCluster} from './src/store/lock.ts'; try { lockCluster('c7', 'intruder'); console.log('taken') } catch (e) { console.log(e.message) }"], {encoding: 'utf8', env: process.env});` +
        ` console.log(child.stdout.trim()); console.log(JSON.parse(fs.readFileSync(lock, 'utf8')).purpose)`,
      live,
    )
    expect(result.stdout.trim().split('\n')).toEqual([expect.stringMatching(/^cluster c7 is locked by pid \d+ \(holder, since /), 'holder'])
  })
})
