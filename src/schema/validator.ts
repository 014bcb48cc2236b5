import {createHash} from 'node:crypto'
import {existsSync, readFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import type * as AjvModule from 'ajv/dist/2020.js'
import type {Ajv2020, ErrorObject, ValidateFunction} from 'ajv/dist/2020.js'
import type AddFormats from 'ajv-formats'

let foundSchemasDir: string | undefined

/** schemas/ at the package root, from src/schema or dist/src/schema; looked for at the first call, not at import. */
export function schemasDir(): string {
  if (foundSchemasDir) return foundSchemasDir
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'schemas')
    try {
      readFileSync(join(candidate, 'cluster.schema.json'))
      return (foundSchemasDir = candidate)
    } catch {
      dir = dirname(dir)
    }
  }
  throw new Error('schemas/ not found beside the mha package')
}

export function loadSchema(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(schemasDir(), name), 'utf8')) as Record<string, unknown>
}

const require = createRequire(import.meta.url)

/** Options shared by the runtime compiler and the build's precompiled validators (scripts/compile-schemas.ts). */
export const ajvOptions = {allErrors: true, strict: true, coerceTypes: false, discriminator: true} as const

/** Config validation fills in the defaults written in the schema, on a copy of the document. */
export const fillsDefaults = (schemaFile: string) => schemaFile === 'cluster.schema.json'

// ajv and its compilation cost a command about 0.2 s at start: loaded only when no precompiled validator fits.
export function makeAjv(useDefaults: boolean, standalone = false): Ajv2020 {
  const {Ajv2020: Ajv} = require('ajv/dist/2020.js') as typeof AjvModule
  const addFormats = require('ajv-formats') as typeof AddFormats.default
  const ajv = new Ajv({...ajvOptions, useDefaults, ...(standalone ? {code: {source: true}} : {})})
  addFormats(ajv, ['date-time', 'hostname', 'ipv4'])
  return ajv
}

const ajvs = new Map<boolean, Ajv2020>()
const compiled = new Map<string, ValidateFunction>()

/** The sha256 of a schema file's text: a precompiled validator is used only for the schema it was built from. */
export function schemaHash(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

/** The file name of a schema's precompiled validator, which the build puts in dist/schemas/. */
export const precompiledName = (schemaFile: string) => schemaFile.replace(/\.schema\.json$/, '.validate.cjs')

/** dist/schemas/ when running the build (dist/src/schema/ -> dist/schemas/); from source, a folder that has none. */
function precompiledPath(schemaFile: string): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'schemas', precompiledName(schemaFile))
}

function precompiled(schemaFile: string, text: string): ValidateFunction | undefined {
  const file = precompiledPath(schemaFile)
  if (!existsSync(file)) return undefined
  const module = require(file) as {schemaHash: string; validate: ValidateFunction}
  return module.schemaHash === schemaHash(text) ? module.validate : undefined
}

export function validator(schemaFile: string): ValidateFunction {
  let fn = compiled.get(schemaFile)
  if (!fn) {
    const text = readFileSync(join(schemasDir(), schemaFile), 'utf8')
    fn = precompiled(schemaFile, text)
    if (!fn) {
      const useDefaults = fillsDefaults(schemaFile)
      let ajv = ajvs.get(useDefaults)
      if (!ajv) ajvs.set(useDefaults, (ajv = makeAjv(useDefaults)))
      fn = ajv.compile(JSON.parse(text) as Record<string, unknown>)
    }
    compiled.set(schemaFile, fn)
  }
  return fn
}

/** One readable message per ajv error, with the offending path in dotted form. */
export interface SchemaProblem {
  path: (string | number)[]
  message: string
}

export function problemsOf(errors: ErrorObject[] | null | undefined): SchemaProblem[] {
  const seen = new Set<string>()
  const problems: SchemaProblem[] = []
  // oneOf/anyOf failures repeat every branch's complaint; keep the summary line for those.
  const branchPaths = new Set((errors ?? []).filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf').map((e) => e.instancePath))
  for (const error of errors ?? []) {
    if (error.keyword !== 'oneOf' && error.keyword !== 'anyOf' && branchPaths.has(error.instancePath)) continue
    const path = pointerToPath(error.instancePath)
    let message = error.message ?? 'is invalid'
    if (error.keyword === 'additionalProperties') {
      const extra = (error.params as {additionalProperty: string}).additionalProperty
      path.push(extra)
      message = 'is not a known field; check its spelling'
    } else if (error.keyword === 'required') {
      const missing = (error.params as {missingProperty: string}).missingProperty
      message = `missing required field "${missing}"`
    } else if (error.keyword === 'enum') {
      message = `must be one of ${(error.params as {allowedValues: unknown[]}).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`
    } else if (error.keyword === 'oneOf' || error.keyword === 'anyOf') {
      message = 'has the wrong form: see the description of this field in the schema'
    }
    const key = `${path.join('.')}|${message}`
    if (seen.has(key)) continue
    seen.add(key)
    problems.push({path, message})
  }
  return problems
}

export function pointerToPath(pointer: string): (string | number)[] {
  if (pointer === '') return []
  return pointer
    .slice(1)
    .split('/')
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((part) => (/^\d+$/.test(part) ? Number(part) : part))
}

export function formatPath(path: readonly (string | number)[]): string {
  let out = ''
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out === '' ? part : `.${part}`
  return out === '' ? '(top level)' : out
}
