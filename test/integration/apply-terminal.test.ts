import {execFile} from 'node:child_process'
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {readPlan} from '../../src/plan/plan-file.js'
import {root, runMha, startSandbox, type RunResult, type TestSandbox} from './harness.js'

// mha apply as people see it on a terminal: a real pty from util-linux script(1), sized as given
// ("0 0" is what `ssh -t` from automation and some CI runners report).
function applyOnPty(size: {rows: number; cols: number}, args: string[]): Promise<RunResult> {
  const quoted = args.map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(' ')
  const command = `stty rows ${size.rows} cols ${size.cols}; ${JSON.stringify(process.execPath)} bin/run.js ${quoted}`
  return new Promise((done) => {
    execFile('script', ['-qfec', command, '/dev/null'], {cwd: root, env: {...process.env, NODE_ENV: 'production'}, timeout: 120_000}, (error, stdout, stderr) => {
      done({code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr})
    })
  })
}

/** What the terminal shows, without colours and cursor moves, one entry per line. */
const visibleLines = (text: string) =>
  text
    // eslint-disable-next-line no-control-regex
    .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
    .split(/\r?\n|\r/)
    .map((l) => l.trimEnd())
    .filter((l) => l !== '')

let s: TestSandbox
const plansDir = mkdtempSync(join(tmpdir(), 'mha-it-term-'))

describe('mha apply on a terminal', () => {
  beforeAll(async () => {
    s = await startSandbox('itterm', 191)
  })
  afterAll(async () => {
    await s?.down()
  })

  it('on a 0x0 pty prints whole lines, each step with its duration; run again, every step shows done', async () => {
    const file = join(plansDir, 'switch-to-db2.json')
    const planned = await runMha(['plan', '--config', s.configFile, '--switchover', '--to', 'db2', '-o', file])
    expect(planned.code, planned.stderr + planned.stdout).toBe(2)
    const steps = readPlan(file).steps.map((step) => step.id)

    const first = await applyOnPty({rows: 0, cols: 0}, ['apply', file, '--config', s.configFile])
    expect(first.code, first.stdout).toBe(0)
    const lines = visibleLines(first.stdout)
    // The bug this guards against: a tree wrapped at width 0, one character per line.
    expect(lines.filter((l) => l.trim().length <= 2), first.stdout).toEqual([])
    for (const id of steps) expect(lines.some((l) => l.includes(`${id} (`) && /\(\d+\.\d\d s\)/.test(l)), `${id} with its duration in:\n${lines.join('\n')}`).toBe(true)
    expect(lines.some((l) => /^applied: /.test(l))).toBe(true)

    const again = await applyOnPty({rows: 40, cols: 120}, ['apply', file, '--config', s.configFile])
    expect(again.code, again.stdout).toBe(0)
    const shown = visibleLines(again.stdout)
    for (const id of steps) expect(shown.some((l) => l.includes(`✔ ${id}: done in an earlier run`)), `${id} done in:\n${shown.join('\n')}`).toBe(true)
    expect(again.stdout).not.toMatch(/[↓⚠]/)
  })

  it('without a TTY, one line per event, each finished step with its duration', async () => {
    const file = join(plansDir, 'switch-back.json')
    expect((await runMha(['plan', '--config', s.configFile, '--switchover', '--to', 'db1', '-o', file])).code).toBe(2)
    const applied = await runMha(['apply', file, '--config', s.configFile])
    expect(applied.code, applied.stderr).toBe(0)
    expect(applied.stdout).toMatch(/^\S+Z done {2}enable_writes:db1 \(\d+\.\d\d s\)/m)
    for (const id of readPlan(file).steps.map((step) => step.id)) expect(applied.stdout).toMatch(new RegExp(`(done|skip) {2}${id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(\\d+\\.\\d\\d s\\)`))
  })
})
