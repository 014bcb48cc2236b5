import {createHash} from 'node:crypto'
import {mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync} from 'node:fs'
import Module from 'node:module'
import {homedir} from 'node:os'
import {dirname, join} from 'node:path'
import {Script} from 'node:vm'

// Node 20 compiles every module from its source at each start (Node 22's module.enableCompileCache() keeps what V8
// compiled). What Node 20 has is V8's code cache for a vm.Script: mha's CommonJS modules (oclif, mysql2, ssh2, yaml
// and the precompiled schema validators, about 2.7 MB) are compiled through it, their code kept on disk after the
// first run. mha's own modules are ES modules, for which Node 20 has no such cache.

/** Node's CommonJS module, as far as compiling one goes. */
interface CjsModule {
  exports: unknown
  require(id: string): unknown
}
interface CjsModuleClass {
  prototype: {_compile: (this: CjsModule, content: string, filename: string, format?: string) => unknown}
  wrap(content: string): string
  _resolveFilename(request: string, parent: CjsModule, isMain: boolean, options?: unknown): string
  _resolveLookupPaths(request: string, parent: CjsModule): string[] | null
  _extensions: unknown
  _cache: unknown
}

const SHA1_BYTES = 20

/**
 * Where the code is kept: one file per module version, named by the hash of its path and text (a changed module
 * is never served another's code), in a folder of this user's (0700) per Node version and architecture.
 */
export function codeCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.startsWith('/') ? env.XDG_CACHE_HOME : join(homedir(), '.cache')
  return join(base, 'mha', 'code-cache', `node-${process.version}-${process.arch}`)
}

/**
 * bin/run.js: CommonJS modules compiled through the code cache, on Node 20 only, without Node options (a V8 flag,
 * a policy, an inspector or source maps change how code is compiled or checked), unless MHA_CODE_CACHE=0.
 */
export function enableCodeCache(): boolean {
  if (process.env.MHA_CODE_CACHE === '0' || process.versions.node.split('.')[0] !== '20' || process.execArgv.length > 0 || process.env.NODE_OPTIONS) return false
  return installCodeCache(codeCacheDir())
}

/**
 * Compile CommonJS modules through V8's code cache in `dir`, from now on; not when `dir` is another user's or
 * others can write in it. A module with a dynamic import() is compiled as Node does (a vm.Script's import() needs
 * an experimental flag in Node 20). A cache file that does not match its checksum, that V8 refuses (another V8
 * build or flags) or that cannot be read or written costs only the compilation it would have saved.
 */
export function installCodeCache(dir: string): boolean {
  if (!ownFolder(dir)) return false
  const CjsModule = Module as unknown as CjsModuleClass
  const compile = CjsModule.prototype._compile
  const toWrite: {script: Script; file: string}[] = []
  CjsModule.prototype._compile = function (this: CjsModule, content: string, filename: string, format?: string): unknown {
    if (format === 'module' || content.startsWith('#!') || /\bimport\s*\(/.test(content)) return compile.call(this, content, filename, format)
    let fn: (...args: unknown[]) => unknown
    try {
      fn = compiled(content, filename, dir, toWrite)
    } catch {
      // A syntax error, said as Node says it.
      return compile.call(this, content, filename, format)
    }
    return fn.call(this.exports, this.exports, requireOf(this, CjsModule), this, filename, dirname(filename))
  }
  process.once('exit', () => writeCaches(dir, toWrite))
  return true
}

function compiled(content: string, filename: string, dir: string, toWrite: {script: Script; file: string}[]): (...args: unknown[]) => unknown {
  const file = join(dir, createHash('sha1').update(filename).update('\0').update(content).digest('hex'))
  const cachedData = readCache(file)
  const script = new Script((Module as unknown as CjsModuleClass).wrap(content), {filename, ...(cachedData ? {cachedData} : {})})
  if (!cachedData || script.cachedDataRejected) toWrite.push({script, file})
  return script.runInThisContext({displayErrors: true}) as (...args: unknown[]) => unknown
}

/** The code kept for a module: [sha1 of the code][code]; V8 itself checks only its version, flags and the source's length. */
function readCache(file: string): Buffer | undefined {
  let stored: Buffer
  try {
    stored = readFileSync(file)
  } catch {
    return undefined
  }
  if (stored.length <= SHA1_BYTES) return undefined
  const code = stored.subarray(SHA1_BYTES)
  return createHash('sha1').update(code).digest().equals(stored.subarray(0, SHA1_BYTES)) ? code : undefined
}

/** At exit, the code of the modules that had none: what V8 compiled by then, the functions run lazily included. */
function writeCaches(dir: string, toWrite: {script: Script; file: string}[]): void {
  if (toWrite.length === 0) return
  try {
    mkdirSync(dir, {recursive: true, mode: 0o700})
  } catch {
    return
  }
  for (const {script, file} of toWrite) {
    // Written whole under another name, then renamed: a reader sees the old file, the new one or none.
    const partial = `${file}.${process.pid}.tmp`
    try {
      const code = script.createCachedData()
      writeFileSync(partial, Buffer.concat([createHash('sha1').update(code).digest(), code]), {mode: 0o600})
      renameSync(partial, file)
    } catch {
      // No cache for it this time (a read-only home, a full disk): the next run compiles it again.
      try {
        rmSync(partial, {force: true})
      } catch {
        // Nothing more to do at exit.
      }
      return
    }
  }
}

/**
 * The folder is this user's and no one else can write in it (its code is run as this user's), or does not exist
 * yet (made 0700 at exit).
 */
function ownFolder(dir: string): boolean {
  try {
    const stat = statSync(dir)
    return stat.isDirectory() && stat.uid === process.getuid?.() && (stat.mode & 0o022) === 0
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT'
  }
}

/** The require() Node gives a module (lib/internal/modules/helpers.js, makeRequireFunction). */
function requireOf(mod: CjsModule, CjsModule: CjsModuleClass): NodeJS.Require {
  const require = ((id: string) => mod.require(id)) as NodeJS.Require
  const resolve = ((request: string, options?: {paths?: string[]}) => CjsModule._resolveFilename(request, mod, false, options)) as NodeJS.RequireResolve
  resolve.paths = (request: string) => CjsModule._resolveLookupPaths(request, mod)
  require.resolve = resolve
  require.main = process.mainModule
  require.extensions = CjsModule._extensions as NodeJS.RequireExtensions
  require.cache = CjsModule._cache as NodeJS.Dict<NodeJS.Module>
  return require
}
