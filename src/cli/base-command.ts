import {Command, Flags, type Interfaces} from '@oclif/core'
import {clusterFile, loadClusterFile} from '../config/load.js'
import type {ClusterConfig} from '../config/types.js'
import {oneLine, UserError} from '../util/errors.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>

/** Common flags and one rule for errors: one line on stderr, a documented exit code, no stack. */
export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override baseFlags = {
    cluster: Flags.string({char: 'c', description: 'Cluster name: reads <config-dir>/<name>.yaml.', helpGroup: 'GLOBAL'}),
    config: Flags.string({description: 'Cluster file to read instead of <config-dir>/<cluster>.yaml.', helpGroup: 'GLOBAL'}),
    'config-dir': Flags.string({description: 'Folder of cluster files.', default: 'clusters', helpGroup: 'GLOBAL'}),
  }

  protected flags!: BaseFlags<T>
  protected args!: Interfaces.InferredArgs<T['args']>

  override async init(): Promise<void> {
    await super.init()
    const {flags, args} = await this.parse({flags: this.ctor.flags, baseFlags: (this.ctor as typeof BaseCommand).baseFlags, args: this.ctor.args, strict: this.ctor.strict})
    this.flags = flags as BaseFlags<T>
    this.args = args as Interfaces.InferredArgs<T['args']>
  }

  protected loadCluster(): ClusterConfig {
    const f = this.flags as {cluster?: string; config?: string; 'config-dir'?: string}
    return loadClusterFile(clusterFile({cluster: f.cluster, config: f.config, configDir: f['config-dir']}))
  }

  /** Print a line on stdout (never used for --json documents, which go through print()). */
  protected say(line: string): void {
    process.stdout.write(line + '\n')
  }

  protected print(document: unknown): void {
    process.stdout.write(JSON.stringify(document, null, 2) + '\n')
  }

  protected override async catch(error: Error & {exitCode?: number; oclif?: {exit?: number}}): Promise<unknown> {
    if (error instanceof UserError) {
      process.stderr.write(
        error.message
          .split('\n')
          .map((l) => `mha: ${l}`)
          .join('\n') + '\n',
      )
      this.exit(error.exitCode)
    }
    // oclif's own parse errors and exits keep their behaviour.
    if (error.oclif !== undefined) return super.catch(error)
    process.stderr.write(`mha: ${oneLine(error)}\n`)
    this.exit(1)
  }
}
