import {Command} from '@oclif/core/command'
import type * as Interfaces from '@oclif/core/interfaces'
import {clusterFile, loadClusterFile} from '../config/load.js'
import type {ClusterConfig} from '../config/types.js'
import {phase} from '../util/phases.js'
import {classifyError, isExit, reportError} from './report-error.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<T['flags']>

/**
 * One rule for errors: one line on stderr, an exit code from the table (exit-codes.ts), no stack, and with
 * --json the same error as a document on stdout. Flags are each command's own (src/cli/flags.ts).
 */
export abstract class BaseCommand<T extends typeof Command> extends Command {

  protected flags!: BaseFlags<T>
  protected args!: Interfaces.InferredArgs<T['args']>

  override async init(): Promise<void> {
    phase('command loaded')
    await super.init()
    const {flags, args} = await this.parse({flags: this.ctor.flags, args: this.ctor.args, strict: this.ctor.strict})
    this.flags = flags as BaseFlags<T>
    this.args = args as Interfaces.InferredArgs<T['args']>
    phase('flags parsed')
  }

  protected loadCluster(): ClusterConfig {
    const f = this.flags as {cluster?: string; config?: string; 'config-dir'?: string}
    const cluster = loadClusterFile(clusterFile({cluster: f.cluster, config: f.config, configDir: f['config-dir']}))
    phase('cluster file read')
    return cluster
  }

  /** Print a line on stdout (never used for --json documents, which go through print()). */
  protected say(line: string): void {
    process.stdout.write(line + '\n')
  }

  protected print(document: unknown): void {
    process.stdout.write(JSON.stringify(document, null, 2) + '\n')
  }

  protected override catch(error: Error): Promise<unknown> {
    // this.exit() inside run(): the command has said what it had to.
    if (isExit(error)) throw error
    const failure = classifyError(error, this.id)
    reportError(failure, this.argv.includes('--json'))
    this.exit(failure.code)
  }
}
