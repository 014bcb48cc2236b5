import {SUPPORTED_HOST_KEY_ALGORITHMS} from '../remote/known-hosts.js'

/**
 * What an MHA `ssh_options` string (arguments MHA put on its ssh command line) asks for, in the terms
 * mha's own SSH client has. Only what it can honour is accepted; anything else is refused, never ignored.
 */
export interface SshOptionSettings {
  port?: number
  user?: string
  identityFile?: string
  connectTimeoutSeconds?: number
  knownHostsFile?: string
  hostKeyAlgorithms?: string[]
  /** A socket path, "SSH_AUTH_SOCK" (the environment's agent) or "none". */
  identityAgent?: string
}

/** An option mha cannot honour: `option` as written, `reason` what to do instead. */
export class SshOptionError extends Error {
  readonly option: string
  constructor(option: string, reason: string) {
    super(`"${option}" ${reason}`)
    this.option = option
  }
}

/** Words as a POSIX shell splits them (MHA put ssh_options into a shell command line): quotes and backslashes. */
export function shellWords(text: string): string[] {
  const words: string[] = []
  // Undefined between words; '' is an empty quoted word.
  let word: string | undefined
  let quote: '"' | "'" | undefined
  const add = (chars: string | undefined) => (word = (word ?? '') + (chars ?? ''))
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (quote === "'") {
      if (c === "'") quote = undefined
      else add(c)
    } else if (quote === '"') {
      if (c === '"') quote = undefined
      else if (c === '\\' && /["\\$`]/.test(text[i + 1] ?? '')) add(text[++i])
      else add(c)
    } else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word)
      word = undefined
    } else if (c === "'" || c === '"') {
      quote = c
      add('')
    } else if (c === '\\') add(text[++i])
    else add(c)
  }
  if (quote) throw new SshOptionError(text, `has an unclosed ${quote} quote; close it`)
  if (word !== undefined) words.push(word)
  return words
}

/** Flags that ask for what mha always does: it prints no SSH diagnostics, requests no TTY, forwards nothing. */
const ALREADY_SO = new Set(['-q', '-T', '-x', '-a'])

const positiveInteger = (option: string, value: string, what: string, max = Number.MAX_SAFE_INTEGER): number => {
  const n = Number(value)
  if (!/^\d+$/.test(value) || n < 1 || n > max) throw new SshOptionError(option, `needs ${what}; fix the value`)
  return n
}

export function parseSshOptions(text: string): SshOptionSettings {
  const words = shellWords(text)
  const settings: SshOptionSettings = {}
  const set = <K extends keyof SshOptionSettings>(option: string, key: K, value: SshOptionSettings[K]) => {
    // OpenSSH keeps the first value of most options; two different ones are more likely a mistake than intended.
    if (settings[key] !== undefined && JSON.stringify(settings[key]) !== JSON.stringify(value)) throw new SshOptionError(option, `sets ${key} a second time; keep one`)
    settings[key] = value
  }
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!
    if (ALREADY_SO.has(word)) continue
    const flag = /^-([ipol])(.*)$/s.exec(word)
    if (!flag) throw new SshOptionError(word, 'is not an ssh option mha can honour (it accepts -i, -p, -l, -o and -q -T -x -a); remove it')
    const value = flag[2] !== '' ? flag[2]! : words[++i]
    const option = flag[2] !== '' ? word : `${word} ${value ?? ''}`.trim()
    if (value === undefined) throw new SshOptionError(word, 'needs a value; add it')
    if (flag[1] === 'i') set(option, 'identityFile', value)
    else if (flag[1] === 'p') set(option, 'port', positiveInteger(option, value, 'a port from 1 to 65535', 65535))
    else if (flag[1] === 'l') set(option, 'user', value)
    else configOption(`-o ${value}`, value, set)
  }
  return settings
}

type Setter = <K extends keyof SshOptionSettings>(option: string, key: K, value: SshOptionSettings[K]) => void

/** One `-o Keyword=value` (or `Keyword value`); keywords are case-insensitive as in ssh_config. */
function configOption(option: string, text: string, set: Setter): void {
  const match = /^\s*([A-Za-z][A-Za-z0-9]*)\s*(?:=\s*|\s+)(.*?)\s*$/s.exec(text)
  if (!match) throw new SshOptionError(option, 'is not Keyword=value; fix it')
  const keyword = match[1]!.toLowerCase()
  const value = match[2]!
  const yesOnly = (why: string) => {
    if (value.toLowerCase() !== 'yes') throw new SshOptionError(option, why)
  }
  switch (keyword) {
    case 'port':
      return set(option, 'port', positiveInteger(option, value, 'a port from 1 to 65535', 65535))
    case 'user':
      return set(option, 'user', value)
    case 'identityfile':
      return set(option, 'identityFile', value)
    case 'connecttimeout':
      return set(option, 'connectTimeoutSeconds', positiveInteger(option, value, 'a whole number of seconds'))
    case 'userknownhostsfile':
      if (/\s/.test(value)) throw new SshOptionError(option, 'names several files; mha reads one known_hosts file per server: merge them into one')
      return set(option, 'knownHostsFile', value)
    case 'identityagent':
      if (value.startsWith('$') && value !== '$SSH_AUTH_SOCK') throw new SshOptionError(option, 'names an environment variable; mha reads only SSH_AUTH_SOCK: give the socket path')
      return set(option, 'identityAgent', value === '$SSH_AUTH_SOCK' ? 'SSH_AUTH_SOCK' : value)
    case 'hostkeyalgorithms': {
      if (/^[+\-^]/.test(value)) throw new SshOptionError(option, 'changes a default list (+, - or ^); give the full list of algorithms instead')
      const list = value.split(',').filter(Boolean)
      const unsupported = list.filter((a) => !SUPPORTED_HOST_KEY_ALGORITHMS.includes(a))
      if (unsupported.length > 0 || list.length === 0)
        throw new SshOptionError(option, `asks for ${unsupported.join(', ') || 'no algorithm'}, which mha's SSH client cannot verify (it knows ${SUPPORTED_HOST_KEY_ALGORITHMS.join(', ')}); remove it`)
      return set(option, 'hostKeyAlgorithms', list)
    }
    case 'stricthostkeychecking':
      // A security downgrade: a man in the middle could serve fake binlogs during a failover. See README "SSH".
      return yesOnly('would let mha talk to a host whose key it has not verified; mha always checks known_hosts: remove it and add the hosts\' keys to known_hosts (ssh-keyscan, then check them)')
    case 'batchmode':
      return yesOnly('asks for prompts, and mha never prompts; remove it')
    case 'passwordauthentication':
      if (value.toLowerCase() !== 'no') throw new SshOptionError(option, 'asks for password authentication, which mha does not do (keys and ssh-agent only); remove it')
      return
    default:
      throw new SshOptionError(option, 'is not an ssh option mha can honour (it honours Port, User, IdentityFile, ConnectTimeout, UserKnownHostsFile, IdentityAgent, HostKeyAlgorithms, StrictHostKeyChecking=yes, BatchMode=yes, PasswordAuthentication=no); remove it')
  }
}
