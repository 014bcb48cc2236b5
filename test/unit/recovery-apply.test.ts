import {execFileSync} from 'node:child_process'
import {existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {applyBinlogs, clientOptionFile, findExecutable, optionFileValue, runBinlogPipeline} from '../../src/recovery/index.js'
import {Secret} from '../../src/util/secret.js'
import {fixturePath} from '../fixtures/binlog/fixtures.js'

const work = mkdtempSync(join(tmpdir(), 'mha-recovery-apply-unit-'))
afterAll(() => rmSync(work, {recursive: true, force: true}))

const printDefaults = findExecutable(['my_print_defaults', 'mariadb-print-defaults'])

describe('the client option file that carries the login', () => {
  const awkward = ['plain', 'with space', 'hash#not-a-comment', 'quote"double', "quote'single", 'back\\slash', 'tab\tand\nnewline', ' lead and trail ', '\\"']

  it('quotes every value so that the option parser gives back exactly the original', () => {
    if (!printDefaults) return
    for (const [i, password] of awkward.entries()) {
      const file = join(work, `client-${i}.cnf`)
      writeFileSync(file, clientOptionFile({name: 'db', host: '127.0.0.1', port: 3306, user: 'us"er#1', password: new Secret(password, 'test')}), {mode: 0o600})
      const printed = execFileSync(printDefaults, [`--defaults-file=${file}`, 'client'], {encoding: 'utf8'})
      // One option per line, except that a newline in a value stays a newline.
      expect(printed, JSON.stringify(password)).toBe(`--user=us"er#1\n--password=${password}\n`)
    }
  })

  it('writes quoted values', () => {
    expect(optionFileValue('a#b')).toBe('"a#b"')
    expect(optionFileValue('x"y\\z')).toBe('"x\\"y\\\\z"')
  })
})

describe('findExecutable', () => {
  it('walks PATH in order and takes the first name found', () => {
    expect(findExecutable(['no-such-program-xyz', 'sh'], '/nonexistent:/bin:/usr/bin')).toMatch(/\/sh$/)
    expect(findExecutable(['no-such-program-xyz'], '/bin:/usr/bin')).toBeUndefined()
    expect(findExecutable(['/bin/sh'])).toBe('/bin/sh')
  })
})

describe('applyBinlogs failures', () => {
  const password = new Secret('s3cret-Pa55', 'test')
  const endpoint = {name: 'dbx', host: '127.0.0.1', port: 1, user: 'mha', password}
  const binlog = fixturePath('master', 'mysql-bin.000002')

  // The server refuses the connection before the login is used: that the password never shows in an error
  // is tested where it is used, against a real server (test/integration/apply-secret.test.ts).
  it('names an unreachable server in a one-line message and removes its temporary files', async () => {
    const temp = mkdtempSync(join(work, 'apply-'))
    const error = await applyBinlogs([binlog], endpoint, {timeoutMs: 5000, tempDir: temp}).then(
      () => null,
      (e: unknown) => e as Error,
    )
    expect(error).toBeInstanceOf(Error)
    expect(error!.message).toMatch(/^dbx \(127\.0\.0\.1:1\): applying mysql-bin\.000002 failed: /)
    expect(error!.message).not.toContain('\n')
    expect(readdirSync(temp)).toEqual([])
  })

  it('says which program is missing', async () => {
    await expect(applyBinlogs([binlog], endpoint, {timeoutMs: 1000, mysqlbinlog: '/nonexistent/mysqlbinlog'})).rejects.toThrow(/\/nonexistent\/mysqlbinlog is not installed/)
    await expect(applyBinlogs([binlog], endpoint, {timeoutMs: 1000, mysql: 'no-such-client-xyz'})).rejects.toThrow(/no-such-client-xyz is not installed/)
    expect(existsSync(binlog)).toBe(true)
  })
})

describe('runBinlogPipeline (mysqlbinlog | client)', () => {
  it('ends when the client fails early, even though the decoder has endless output left', async () => {
    const started = Date.now()
    const outcome = await runBinlogPipeline('yes', ['BINLOG /*!*/;'], 'sh', ['-c', 'echo "ERROR 1062 (23000) at line 7: Duplicate entry" >&2; exit 1'], 20_000)
    expect(outcome).toMatchObject({timedOut: false, clientFailure: 'ERROR 1062 (23000) at line 7: Duplicate entry', binlogFailure: null})
    expect(Date.now() - started).toBeLessThan(10_000)
  })

  it('finds the ERROR line after a failing statement of megabytes that the client echoed first', async () => {
    // As the mariadb client does with --batch: the statement between dashes, then the error.
    const client = 'printf -- "--------------\\nBINLOG \'\\n" >&2; head -c 3000000 /dev/zero | tr "\\0" A | fold -w 76 >&2; printf "\\n\'\\n--------------\\n\\nERROR 2006 (HY000) at line 7522: Server has gone away\\n" >&2; exit 1'
    const outcome = await runBinlogPipeline('printf', ['x /*!*/;\n'], 'sh', ['-c', client], 20_000)
    expect(outcome.clientFailure).toBe('ERROR 2006 (HY000) at line 7522: Server has gone away')
  })

  it('kills both when the time is up', async () => {
    const started = Date.now()
    const outcome = await runBinlogPipeline('yes', [], 'sleep', ['60'], 300)
    expect(outcome.timedOut).toBe(true)
    expect(Date.now() - started).toBeLessThan(5000)
  })

  // The timeout bounds lack of progress, not the total time: a large recovery that keeps moving is never cut short.
  it('lets a stream that keeps moving run well past the timeout', async () => {
    // 30 statements 100 ms apart: three times the timeout in all, never more than a tenth of it without a byte.
    const outcome = await runBinlogPipeline('sh', ['-c', 'for i in $(seq 1 30); do echo "x /*!*/;"; sleep 0.1; done'], 'cat', [], 1000)
    expect(outcome).toEqual({statements: 30, timedOut: false, clientFailure: null, binlogFailure: null})
  })

  it('kills a stream that stops moving once the timeout passes without a byte', async () => {
    const outcome = await runBinlogPipeline('sh', ['-c', 'echo "x /*!*/;"; echo "y /*!*/;"; exec sleep 60'], 'cat', [], 1000)
    expect(outcome).toMatchObject({statements: 2, timedOut: true})
  })

  it('counts the statements that went through, and reports a decoder failure', async () => {
    const ok = await runBinlogPipeline('printf', ['a\n/*!*/;\nb\n/*!*/;\n'], 'cat', [], 5000)
    expect(ok).toEqual({statements: 2, timedOut: false, clientFailure: null, binlogFailure: null})
    const bad = await runBinlogPipeline('sh', ['-c', 'echo "ERROR: Found invalid event in binary log" >&2; exit 1'], 'cat', [], 5000)
    expect(bad).toMatchObject({clientFailure: null, binlogFailure: 'ERROR: Found invalid event in binary log'})
  })
})
