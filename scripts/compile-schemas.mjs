// Build step: each JSON Schema compiled once into a standalone validator (dist/schemas/<name>.validate.cjs), so
// that a command does not load and run ajv's compiler at every start. Each carries its schema's hash; the
// runtime compiles the schema itself when the hash does not match (a schema edited after the build).
import {mkdirSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(import.meta.url)
const standaloneCode = require('ajv/dist/standalone').default
const {fillsDefaults, makeAjv, precompiledPath, schemaHash} = await import(join(root, 'dist/src/schema/validator.js'))

const schemas = readdirSync(join(root, 'schemas')).filter((f) => f.endsWith('.schema.json'))
for (const file of schemas) {
  const text = readFileSync(join(root, 'schemas', file), 'utf8')
  const ajv = makeAjv(fillsDefaults(file), true)
  const code = standaloneCode(ajv, ajv.compile(JSON.parse(text)))
  const out = precompiledPath(file)
  mkdirSync(dirname(out), {recursive: true})
  writeFileSync(out, `${code}\nmodule.exports.schemaHash = ${JSON.stringify(schemaHash(text))};\nmodule.exports.validate = module.exports;\n`)
}
console.log(`compiled ${schemas.length} schemas into ${dirname(precompiledPath(schemas[0]))}`)
