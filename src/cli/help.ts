import type {Command} from '@oclif/core/command'
import {Help} from '@oclif/core/help'
import {exitCodesOf} from './exit-codes.js'

/** oclif's help, with the exit-code table (exit-codes.ts) under every command and under the root help. */
export default class MhaHelp extends Help {
  protected override formatCommand(command: Command.Loadable): string {
    return `${super.formatCommand(command)}\n\n${this.exitCodes(command.id)}`
  }

  // After the topics and commands, which oclif prints after formatRoot().
  protected override async showRootHelp(): Promise<void> {
    await super.showRootHelp()
    this.log(`\n${this.exitCodes(undefined)}`)
  }

  private exitCodes(commandId: string | undefined): string {
    return this.section(
      'EXIT CODES',
      exitCodesOf(commandId).map(([code, meaning]) => [String(code), meaning]),
    )
  }
}
