import {readdirSync} from 'node:fs'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {commands} from '../../commands/index.js'
import {closestCommand} from '../../src/cli/did-you-mean.js'
import {commandExitCodes, ExitCode, exitCodesOf} from '../../src/cli/exit-codes.js'
import {classifyError} from '../../src/cli/report-error.js'
import {ConfigError, UsageError, UserError} from '../../src/util/errors.js'

type FlagSpec = {default?: unknown; dependsOn?: string[]; exclusive?: string[]}
const registry = Object.entries(commands) as [string, {description?: string; examples?: unknown[]; flags?: Record<string, FlagSpec>}][]

describe('the command registry (commands/index.ts)', () => {
  // oclif finds a command by its file (commands/sandbox/up.ts is "sandbox:up"), through the manifest the build
  // writes; the build refuses a manifest that differs from the registry, and this says so before any build.
  it('names every command file under commands/, and only those', () => {
    const dir = join(import.meta.dirname, '../../commands')
    const files = readdirSync(dir, {recursive: true, encoding: 'utf8'}).filter((f) => f.endsWith('.ts') && f !== 'index.ts')
    expect(files.map((f) => f.replace(/\.ts$/, '').split('/').join(':')).sort()).toEqual(Object.keys(commands).sort())
  })

  it.each(registry)('%s has a description and at least one example', (_id, command) => {
    expect(command.description?.trim()).toBeTruthy()
    expect(command.examples?.length ?? 0).toBeGreaterThan(0)
  })

  it.each(registry)('%s has its row in the exit-code table', (id) => {
    expect(commandExitCodes[id], `add ${id} to commandExitCodes in src/cli/exit-codes.ts`).toBeDefined()
    expect(exitCodesOf(id).map(([code]) => code)).toEqual(expect.arrayContaining([ExitCode.error, ExitCode.usage]))
  })

  // oclif counts a defaulted flag as given: "--to" depending on a "--switchover" that defaults to false was never refused.
  it.each(registry)('%s: no flag on either side of a dependency has a default, and every related flag exists', (_id, command) => {
    const flags = command.flags ?? {}
    for (const [name, flag] of Object.entries(flags)) {
      // A defaulted flag that depends on another is always "given", so it always demands the other.
      if (flag.dependsOn?.length) expect(flag.default, `--${name} has a default and depends on ${flag.dependsOn.join(', ')}`).toBeUndefined()
      for (const other of flag.dependsOn ?? []) {
        expect(flags[other], `--${name} depends on unknown --${other}`).toBeDefined()
        expect(flags[other]!.default, `--${name} depends on --${other}, which has a default`).toBeUndefined()
      }
      for (const other of flag.exclusive ?? []) expect(flags[other], `--${name} excludes unknown --${other}`).toBeDefined()
    }
  })
})

describe('exit codes', () => {
  it('give each command its own meaning of 2 and 10, and the general one of 1 and 64', () => {
    expect(exitCodesOf('plan').map(([c]) => c)).toEqual([0, 1, 2, 64])
    expect(exitCodesOf('apply').map(([c]) => c)).toEqual([0, 1, 10, 64])
    expect(exitCodesOf('check').find(([c]) => c === 2)?.[1]).toMatch(/not possible/)
    expect(exitCodesOf(undefined).map(([c]) => c)).toEqual([0, 1, 2, 10, 64])
  })

  it('classify errors: usage 64, config and others 1, with their kind', () => {
    expect(classifyError(new UsageError('name a cluster'))).toEqual({code: 64, kind: 'usage', message: 'name a cluster'})
    expect(classifyError(new ConfigError('app1.yaml:3:1 port: must be integer'))).toMatchObject({code: 1, kind: 'config'})
    expect(classifyError(new UserError('bad plan', 'plan'))).toMatchObject({code: 1, kind: 'plan'})
    expect(classifyError(new Error('socket hang up\n  at x'))).toEqual({code: 1, kind: 'runtime', message: 'socket hang up at x'})
    const parse = Object.assign(new Error('Nonexistent flag: --bogus\nSee more help with --help'), {parse: {}})
    expect(classifyError(parse, 'sandbox:status')).toEqual({code: 64, kind: 'usage', message: 'Nonexistent flag: --bogus (see: mha sandbox status --help)'})
  })
})

describe('did you mean', () => {
  const ids = registry.map(([id]) => id)
  it('suggests the command a typo was meant to be', () => {
    expect(closestCommand('aply', ids)).toBe('apply')
    expect(closestCommand('sandbox:stat', ids)).toBe('sandbox:status')
    expect(closestCommand('chek', ids)).toBe('check')
  })
  it('suggests nothing for a word far from every command', () => {
    expect(closestCommand('kubernetes', ids)).toBeUndefined()
  })
})
