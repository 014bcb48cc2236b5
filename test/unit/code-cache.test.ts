import {spawnSync} from 'node:child_process'
import {chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'

const root = join(import.meta.dirname, '../..')

/** A new Node process that installs the cache in `cache` and requires `module`, printing what it exports. */
function load(cache: string, module: string): string {
  const body = `import {createRequire} from 'node:module'; import {installCodeCache} from './src/util/code-cache.ts'; installCodeCache(${JSON.stringify(cache)}); console.log(JSON.stringify(createRequire(import.meta.url)(${JSON.stringify(module)})))`
  const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', body], {cwd: root, encoding: 'utf8'})
  expect(result.status, result.stderr).toBe(0)
  return result.stdout.trim()
}

describe('code cache (CommonJS modules compiled through V8 code kept on disk)', () => {
  let dir: string
  let cache: string
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'mha-code-cache-'))
    cache = join(dir, 'cache')
  })
  afterEach(() => rmSync(dir, {recursive: true, force: true}))

  const files = () => (existsSync(cache) ? readdirSync(cache).sort() : [])

  it('keeps a module\'s code after its first run and runs the same module from it', () => {
    const module = join(dir, 'm.cjs')
    writeFileSync(module, 'module.exports = {answer: 6 * 7, name: require("node:path").basename(__filename)}\n')
    expect(load(cache, module)).toBe('{"answer":42,"name":"m.cjs"}')
    const kept = files()
    expect(kept).toHaveLength(1)
    const stored = readFileSync(join(cache, kept[0]!))
    expect(load(cache, module)).toBe('{"answer":42,"name":"m.cjs"}')
    // Used, not compiled and written again.
    expect(readFileSync(join(cache, kept[0]!)).equals(stored)).toBe(true)
  })

  it('never runs the code of a module\'s earlier text, even of the same length (V8 checks only the length)', () => {
    const module = join(dir, 'm.cjs')
    writeFileSync(module, 'module.exports = 1111\n')
    expect(load(cache, module)).toBe('1111')
    writeFileSync(module, 'module.exports = 2222\n')
    expect(load(cache, module)).toBe('2222')
    expect(files()).toHaveLength(2)
  })

  it('compiles again, and keeps good code, when a kept file is damaged', () => {
    const module = join(dir, 'm.cjs')
    writeFileSync(module, 'module.exports = [1, 2, 3].map((n) => n * 2)\n')
    load(cache, module)
    const [name] = files()
    const damaged = readFileSync(join(cache, name!))
    damaged.writeUInt8(damaged.readUInt8(damaged.length - 5) ^ 0xff, damaged.length - 5)
    writeFileSync(join(cache, name!), damaged)
    expect(load(cache, module)).toBe('[2,4,6]')
    expect(readFileSync(join(cache, name!)).equals(damaged)).toBe(false)
    expect(load(cache, module)).toBe('[2,4,6]')
  })

  it('leaves a module with a dynamic import() to Node, and a folder others can write in alone', () => {
    const dynamic = join(dir, 'd.cjs')
    writeFileSync(dynamic, 'module.exports = typeof function later() { return import("node:fs") }\n')
    expect(load(cache, dynamic)).toBe('"function"')
    expect(files()).toEqual([])

    const module = join(dir, 'm.cjs')
    writeFileSync(module, 'module.exports = "compiled by Node"\n')
    const shared = join(dir, 'shared')
    mkdirSync(shared, {mode: 0o777})
    chmodSync(shared, 0o777)
    expect(load(shared, module)).toBe('"compiled by Node"')
    expect(readdirSync(shared)).toEqual([])
  })
})
