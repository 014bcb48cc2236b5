// Build step: oclif.manifest.json, what oclif knows of every command (id, flags, args, help texts) and the
// file to import for it. With it a command imports only its own file: `mha --version` and `mha plan --help`
// import none, `mha plan` only commands/plan.js and what it uses. Without it oclif imports every command
// at each start to learn the same (what `oclif manifest` writes; this does it with @oclif/core alone).
// The commands found must be exactly those of the registry, commands/index.ts.
import {readFileSync, rmSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {Plugin} from '@oclif/core/config'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const file = join(root, 'oclif.manifest.json')
rmSync(file, {force: true})
const plugin = new Plugin({root, isRoot: true, type: 'core', ignoreManifest: true, errorOnManifestCreate: true, respectNoCacheDefault: true})
await plugin.load()
const found = Object.keys(plugin.manifest.commands).sort()
const {commands} = (await import(join(root, 'dist/commands/index.js'))) as {commands: Record<string, unknown>}
const registered = Object.keys(commands).sort()
if (found.join() !== registered.join()) {
  throw new Error(`the command files under commands/ (${found.join(', ')}) are not the registry commands/index.ts (${registered.join(', ')})`)
}
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {version: string}).version
if (plugin.manifest.version !== version) throw new Error(`manifest version ${plugin.manifest.version} is not the package's ${version}`)
writeFileSync(file, JSON.stringify(plugin.manifest, null, 2) + '\n')
console.log(`wrote ${file} (${found.length} commands)`)
