import {inspect} from 'node:util'

/**
 * A password or key passphrase. It hides itself from every way a value usually leaks:
 * string conversion, JSON, util.inspect and template literals. Only reveal() gives the text.
 */
export class Secret {
  readonly #value: string
  readonly source: string

  constructor(value: string, source: string) {
    this.#value = value
    this.source = source
  }

  reveal(): string {
    return this.#value
  }

  toString(): string {
    return '[secret]'
  }

  toJSON(): string {
    return '[secret]'
  }

  [inspect.custom](): string {
    return `[secret from ${this.source}]`
  }
}

/** Replace every occurrence of the given secrets in a text, for error messages from outside. */
export function redact(text: string, secrets: readonly (Secret | undefined)[]): string {
  let out = text
  for (const secret of secrets) {
    const value = secret?.reveal()
    if (value && value.length > 0) out = out.split(value).join('[secret]')
  }
  return out
}
