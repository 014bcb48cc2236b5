// Build step: each JSON Schema compiled once into a standalone validator (dist/schemas/<name>.validate.cjs), so
// that a command does not load and run ajv's compiler at every start. Each carries its schema's hash; the
// runtime compiles the schema itself when the hash does not match (a schema edited after the build).
import {mkdirSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import standaloneCode from 'ajv/dist/standalone/index.js'
import {fillsDefaults, makeAjv, precompiledName, schemaHash} from '../src/schema/validator.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const out = join(root, 'dist', 'schemas')
mkdirSync(out, {recursive: true})
const schemas = readdirSync(join(root, 'schemas')).filter((f) => f.endsWith('.schema.json'))
for (const file of schemas) {
  const text = readFileSync(join(root, 'schemas', file), 'utf8')
  const ajv = makeAjv(fillsDefaults(file), true)
  const code = standaloneCode.default(ajv, ajv.compile(JSON.parse(text) as Record<string, unknown>))
  writeFileSync(join(out, precompiledName(file)), `${code}\nmodule.exports.schemaHash = ${JSON.stringify(schemaHash(text))};\nmodule.exports.validate = module.exports;\n`)
}
console.log(`compiled ${schemas.length} schemas into ${out}`)
