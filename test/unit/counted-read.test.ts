import {spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {countedCommand, transferProblem} from '../../src/remote/ssh.js'

// The wrapper runs in the remote login shell; Debian's /bin/sh (dash) is the strictest one it must work in.
const run = (command: string) => {
  const r = spawnSync('/bin/sh', ['-c', countedCommand(command)], {maxBuffer: 64 * 1024 * 1024})
  return {code: r.status, stdout: r.stdout, stderr: r.stderr.toString('utf8')}
}

describe('countedCommand: the host says how many bytes it sent', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mha-unit-counted-'))
  afterAll(() => rmSync(dir, {recursive: true, force: true}))
  const file = join(dir, 'data.bin')
  const bytes = Buffer.alloc(3 * 1024 * 1024 + 17, 7)
  writeFileSync(file, bytes)

  it('passes stdout through unchanged and reports its length last on stderr', () => {
    const r = run(`tail -c +101 -- ${file}`)
    expect(r.code).toBe(0)
    expect(r.stdout.equals(bytes.subarray(100))).toBe(true)
    expect(transferProblem(r.stderr, r.stdout.length)).toBeNull()
    expect(transferProblem(r.stderr, r.stdout.length - 32768)).toBe(`the host sent ${bytes.length - 100} bytes, ${bytes.length - 100 - 32768} arrived`)
  })

  it("keeps the command's own exit status and stderr, also through exit and exec", () => {
    const missing = run(`cat -- ${join(dir, 'missing')}`)
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/No such file/)
    expect(run('echo short >&2; exit 3').code).toBe(3)
    const exec = run(`s=1; exec tail -c +2 -- ${file}`)
    expect(exec.code).toBe(0)
    expect(exec.stdout.length).toBe(bytes.length - 1)
  })

  it('an empty output is counted as 0 bytes, and a missing count is a problem', () => {
    const r = run('true')
    expect(r.code).toBe(0)
    expect(transferProblem(r.stderr, 0)).toBeNull()
    expect(transferProblem('', 10)).toMatch(/did not say how many bytes it sent \(10 arrived\)/)
  })
})
