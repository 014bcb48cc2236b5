import {accessSync, constants as fsConstants, statSync} from 'node:fs'
import {homedir} from 'node:os'
import {isAbsolute, join, resolve} from 'node:path'
import {shellQuote} from '../remote/ssh.js'
import type {HookConfig} from '../config/types.js'
import {findExecutable} from '../util/executables.js'

/** The hook fields of a cluster file, as they are named there. */
export const hookFields = ['shutdown', 'master_ip_failover', 'master_ip_online_change', 'report', 'secondary_check'] as const
export type HookField = (typeof hookFields)[number]

/** Each hook the cluster file sets, under its field name. */
export function configuredHooks(hooks: HookConfig): {field: HookField; command: string}[] {
  const byField: Record<HookField, string | undefined> = {
    shutdown: hooks.shutdown,
    master_ip_failover: hooks.masterIpFailover,
    master_ip_online_change: hooks.masterIpOnlineChange,
    report: hooks.report,
    secondary_check: hooks.secondaryCheck,
  }
  return hookFields.flatMap((field) => (byField[field] ? [{field, command: byField[field]}] : []))
}

/**
 * A hook's command line split as sh splits its first word: the command word (unquoted) and the rest (the
 * hook's own arguments, kept as written). Only plain or wholly quoted first words are understood.
 */
export function splitHookCommand(line: string): {word: string; rest: string} {
  const text = line.trimStart()
  const quote = text[0]
  if (quote === "'" || quote === '"') {
    const end = text.indexOf(quote, 1)
    if (end > 0) return {word: text.slice(1, end), rest: text.slice(end + 1)}
  }
  const end = text.search(/\s/)
  return end < 0 ? {word: text, rest: ''} : {word: text.slice(0, end), rest: text.slice(end)}
}

/**
 * The rule for a hook command (like a shell's): a command word with a "/" is a path, a relative one taken from
 * the cluster file's folder (and ~/ from the home folder); a bare name is left for sh to look up in PATH when
 * the hook runs. The arguments after the command word are kept.
 */
export function resolveHookCommand(line: string, baseDir: string): string {
  const {word, rest} = splitHookCommand(line)
  if (!word.includes('/')) return line
  const path = word.startsWith('~/') ? join(homedir(), word.slice(2)) : isAbsolute(word) ? word : resolve(baseDir, word)
  return `${shellQuote(path)}${rest}`
}

/** The executable a hook command runs, or why there is none (a bare name missing from PATH, a path missing or not executable). */
export function locateHookCommand(line: string, path = process.env.PATH ?? ''): {file: string; problem: null} | {file: null; problem: string} {
  const {word} = splitHookCommand(line)
  if (word.includes('/')) {
    const why = notExecutable(word)
    return why ? {file: null, problem: `${word} ${why}`} : {file: word, problem: null}
  }
  const found = findExecutable([word], path)
  return found ? {file: found, problem: null} : {file: null, problem: `${word} is not found in PATH (${path || 'empty'})`}
}

function notExecutable(file: string): string | null {
  try {
    if (!statSync(file).isFile()) return 'is not a file'
  } catch {
    return 'does not exist'
  }
  try {
    accessSync(file, fsConstants.X_OK)
    return null
  } catch {
    return 'is not executable'
  }
}
