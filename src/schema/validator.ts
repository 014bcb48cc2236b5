import {readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {Ajv2020, type ErrorObject, type ValidateFunction} from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'

/** schemas/ at the package root, from src/schema or dist/src/schema. */
export const schemasDir: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'schemas')
    try {
      readFileSync(join(candidate, 'cluster.schema.json'))
      return candidate
    } catch {
      dir = dirname(dir)
    }
  }
  throw new Error('schemas/ not found beside the mha package')
})()

export function loadSchema(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(schemasDir, name), 'utf8')) as Record<string, unknown>
}

function makeAjv(useDefaults: boolean): Ajv2020 {
  const ajv = new Ajv2020({allErrors: true, strict: true, useDefaults, coerceTypes: false, discriminator: true})
  addFormats.default(ajv, ['date-time', 'hostname', 'ipv4'])
  return ajv
}

// Config validation fills in the defaults written in the schema, on a copy of the document.
const configAjv = makeAjv(true)
const outputAjv = makeAjv(false)
const compiled = new Map<string, ValidateFunction>()

export function validator(schemaFile: string): ValidateFunction {
  let fn = compiled.get(schemaFile)
  if (!fn) {
    const ajv = schemaFile === 'cluster.schema.json' ? configAjv : outputAjv
    fn = ajv.compile(loadSchema(schemaFile))
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
