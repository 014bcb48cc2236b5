import {chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {basename, dirname, join, resolve} from 'node:path'
import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../../src/cli/base-command.js'
import {jsonFlag} from '../../src/cli/flags.js'
import {importMhaConfig} from '../../src/config/import-mha.js'
import {defaultConfigDir, parseClusterConfig} from '../../src/config/load.js'
import {UserError} from '../../src/util/errors.js'

export default class ConfigImportMha extends BaseCommand<typeof ConfigImportMha> {
  static override summary = "Convert MHA's app1.cnf (and masterha_default.cnf) into a cluster YAML file."
  static override description =
    'Follows MHA 0.58 precedence ([serverN] over the app [server default] over the global file). Passwords go to 0600 files beside the YAML, never into it. Lists every parameter it could not carry over.'
  static override examples = ['<%= config.bin %> config import-mha /etc/masterha/app1.cnf --global /etc/masterha_default.cnf', '<%= config.bin %> config import-mha app1.cnf -o /etc/mha/app1.yaml --json']
  static override args = {file: Args.string({description: "MHA's application config, e.g. app1.cnf", required: true})}
  static override flags = {
    global: Flags.string({description: "MHA's global config (masterha_default.cnf)."}),
    name: Flags.string({description: 'Cluster name; default: the file name without .cnf.'}),
    output: Flags.string({char: 'o', description: 'YAML to write; default: <config-dir>/<name>.yaml.'}),
    force: Flags.boolean({description: 'Overwrite an existing YAML and secret files.', default: false}),
    'config-dir': Flags.string({description: 'Folder for the YAML when --output is not given.', default: defaultConfigDir, exclusive: ['output']}),
    ...jsonFlag('{file, secretFiles, notCarried: [{where, param, reason}]} (schemas/import-mha.schema.json)'),
  }

  // oclif requires run() to return a promise; this command has nothing to await.
  // eslint-disable-next-line @typescript-eslint/require-await
  async run(): Promise<void> {
    const appFile = this.args.file
    const read = (file: string) => {
      try {
        return readFileSync(file, 'utf8')
      } catch {
        throw new UserError(`${file}: cannot read this file`)
      }
    }
    const name = this.flags.name ?? basename(appFile).replace(/\.(cnf|conf|ini)$/, '')
    const output = resolve(this.flags.output ?? join(this.flags['config-dir'], `${name}.yaml`))
    if (existsSync(output) && !this.flags.force) throw new UserError(`${output} exists; choose --output or add --force`)
    const result = importMhaConfig({
      appText: read(appFile),
      appFile,
      clusterName: name,
      ...(this.flags.global ? {globalText: read(this.flags.global), globalFile: this.flags.global} : {}),
    })
    const secretsDir = join(dirname(output), `${name}.secrets`)
    mkdirSync(secretsDir, {recursive: true, mode: 0o700})
    for (const secret of result.secrets) {
      const file = join(secretsDir, secret.field)
      writeFileSync(file, secret.value + '\n', {mode: 0o600})
      chmodSync(file, 0o600)
    }
    // What we write must load: validate before saying it is done.
    parseClusterConfig(result.yaml, output)
    writeFileSync(output, result.yaml)
    const secretFiles = result.secrets.map((s) => join(secretsDir, s.field))
    if (this.flags.json) return this.print({file: output, secretFiles, notCarried: result.notCarried})
    this.say(`wrote ${output}${secretFiles.length ? ` and ${secretFiles.join(', ')} (mode 0600)` : ''}`)
    if (result.notCarried.length === 0) this.say('every parameter was carried over')
    else {
      this.say(`${result.notCarried.length} parameter${result.notCarried.length === 1 ? ' was' : 's were'} not carried over:`)
      for (const n of result.notCarried) this.say(`  ${n.where} ${n.param}: ${n.reason}`)
    }
  }
}
