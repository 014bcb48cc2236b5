/** What went wrong, for people and for `--json` errors: usage (exit 64), a bad cluster file, a bad plan file, or the run itself. */
export type ErrorKind = 'usage' | 'config' | 'plan' | 'runtime'

/** An error the operator can act on: printed as one line, never with a stack. */
export class UserError extends Error {
  readonly kind: ErrorKind
  constructor(message: string, kind: ErrorKind = 'runtime') {
    super(message)
    this.name = 'UserError'
    this.kind = kind
  }
}

/** A cluster file (or folder of them) that cannot be used: names the file and what to fix. */
export class ConfigError extends UserError {
  constructor(message: string) {
    super(message, 'config')
  }
}

/** The command line itself is wrong: a missing or conflicting flag, a bad value. */
export class UsageError extends UserError {
  constructor(message: string) {
    super(message, 'usage')
  }
}

/** The message of anything thrown, on one line. */
export function oneLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error)
  return text.replace(/\s*\n\s*/g, ' ').trim()
}
