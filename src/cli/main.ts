import {Config} from '@oclif/core/config'
import {flush} from '@oclif/core/flush'
import {handle} from '@oclif/core/handle'
import {run} from '@oclif/core/run'
import {UsageError} from '../util/errors.js'
import {phase} from '../util/phases.js'
import {closestCommand} from './did-you-mean.js'
import {classifyError, isExit, reportError} from './report-error.js'

/** The command id oclif looked for: "sandbox stat" is sandbox:stat, "aply" is aply. */
function typedCommand(argv: readonly string[], config: Config): string {
  const words = argv.slice(0, argv.findIndex((a) => a.startsWith('-')) === -1 ? argv.length : argv.findIndex((a) => a.startsWith('-')))
  return words.length > 1 && config.findTopic(words[0]!) ? `${words[0]}:${words[1]}` : (words[0] ?? '')
}

/** plugin-not-found's refusal (exit 127) or oclif's own: an unknown command is a usage error, with the nearest one. */
function unknownCommand(error: unknown, argv: readonly string[], config: Config | undefined): UsageError | undefined {
  if (!config || !(error instanceof Error)) return undefined
  const exit = (error as Error & {oclif?: {exit?: number}}).oclif?.exit
  if (exit !== 127 && !/^command \S+ not found/.test(error.message)) return undefined
  const typed = typedCommand(argv, config)
  const suggestion = closestCommand(typed, config.commandIDs)
  const show = (id: string) => id.replaceAll(':', ' ')
  return new UsageError(`${show(typed)} is not a mha command${suggestion ? `; did you mean "mha ${show(suggestion)}"?` : ''} ("mha help" lists them)`)
}

/**
 * bin/run.js: oclif's run, with errors that happen outside mha's own commands (an unknown command, a
 * plugin's parse error) given the same exit codes and --json documents as those inside.
 */
export async function runMain(dir: string, argv: string[] = process.argv.slice(2)): Promise<void> {
  let config: Config | undefined
  try {
    phase('oclif loaded')
    config = await Config.load(dir)
    phase('oclif configured')
    await run(argv, config)
    await flush()
  } catch (error) {
    if (isExit(error)) return handle(error)
    const failure = classifyError(unknownCommand(error, argv, config) ?? error)
    reportError(failure, argv.includes('--json'))
    process.exit(failure.code)
  }
}
