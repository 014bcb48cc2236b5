import {type ErrorKind, oneLine, UserError} from '../util/errors.js'
import {ExitCode} from './exit-codes.js'

/** What `--json` prints on stdout when a command fails (schemas/error.schema.json). */
export interface ErrorDocument {
  error: {code: number; message: string; kind: ErrorKind}
}

export interface ClassifiedError {
  code: number
  kind: ErrorKind
  message: string
}

type Thrown = Error & {oclif?: {exit?: number}; parse?: unknown; code?: unknown}

/** oclif's exit(): the command already said what it had to; only the code is left. */
export function isExit(error: unknown): error is Error & {oclif: {exit: number}} {
  return error instanceof Error && (error as Thrown).code === 'EEXIT' && typeof (error as Thrown).oclif?.exit === 'number'
}

/** oclif's parser errors: unknown flag, missing argument, bad value, flags that need or exclude others. */
export function isParseError(error: unknown): boolean {
  return error instanceof Error && ((error as Thrown).parse !== undefined || /^Parsing --/.test(error.message))
}

/** oclif's messages end with "See more help with --help"; ours say where help is, once. */
function usageMessage(error: Error, commandId: string | undefined): string {
  const text = oneLine(error.message.replace(/\s*See more help with --help\s*$/, '').replace(/^The following errors? occurred:\s*/, '')).replace(/^Parsing (--\S+)\s+/, '$1: ')
  return `${text} (see: mha ${commandId ? `${commandId.replaceAll(':', ' ')} --help` : 'help'})`
}

/** One rule for every failure: its exit code from the table, its kind, and a message for people. */
export function classifyError(error: unknown, commandId?: string): ClassifiedError {
  if (error instanceof UserError) return {code: error.kind === 'usage' ? ExitCode.usage : ExitCode.error, kind: error.kind, message: error.message}
  if (isParseError(error)) return {code: ExitCode.usage, kind: 'usage', message: usageMessage(error as Error, commandId)}
  return {code: ExitCode.error, kind: 'runtime', message: oneLine(error)}
}

/** stderr always gets the line(s); with --json the same error is also a document on stdout. */
export function reportError(failure: ClassifiedError, json: boolean): void {
  process.stderr.write(
    failure.message
      .split('\n')
      .map((l) => `mha: ${l}`)
      .join('\n') + '\n',
  )
  if (json) {
    const document: ErrorDocument = {error: {code: failure.code, message: failure.message, kind: failure.kind}}
    process.stdout.write(JSON.stringify(document, null, 2) + '\n')
  }
}
