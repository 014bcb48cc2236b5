import {connect} from 'node:net'
import type {ProxyConfig, RuntimeApiAddress} from '../config/types.js'
import {freshSsh, type SshRunner} from '../remote/session-pool.js'
import type {SshTarget} from '../remote/ssh.js'

/**
 * HAProxy's runtime API (the stats socket at level admin), in its non-interactive mode: one connection per
 * command, the command line sent, the answer read until haproxy closes. Reached over TCP from the manager, or
 * as a unix socket on the proxy's host over SSH (stream-local forwarding, no program needed there).
 */

export class HaproxyError extends Error {
  /** unreachable: no answer at all (the proxy may be down); refused: haproxy answered with an error. */
  readonly kind: 'unreachable' | 'refused'
  constructor(kind: HaproxyError['kind'], message: string) {
    super(message)
    this.kind = kind
  }
}

/** One server of a backend as `show servers state` gives it. */
export interface BackendServer {
  backend: string
  name: string
  address: string
  port: number
  /** srv_op_state: 0 stopped, 1 starting, 2 running, 3 stopping (health checks). */
  opState: number
  /** srv_admin_state: bit field (0x01 forced maint, 0x02 inherited maint, 0x04 maint from the configuration, 0x08/0x10 drain, 0x20 resolution maint). */
  adminState: number
  weight: number
  /** In maintenance (forced, inherited or by resolution): no traffic at all. */
  maint: boolean
  /** Draining: no new connections. */
  drain: boolean
  /** New connections may go to it (not in maint, not draining, weight above 0), health permitting. */
  enabled: boolean
}

// HAProxy's SRV_ADMF_MAINT and SRV_ADMF_DRAIN masks (0x04, maintenance from the configuration, is only a marker:
// "set server state ready" clears the forced bit and leaves it).
const MAINT = 0x23
const DRAIN = 0x18

/** Names haproxy allows for proxies and servers; nothing else reaches a command line. */
const NAME = /^[A-Za-z0-9_.:-]+$/

export type ServerAdminState = 'ready' | 'maint' | 'drain'

export interface HaproxyTarget {
  name: string
  runtimeApi: RuntimeApiAddress
  timeoutMs: number
}

/** A short description of where the runtime API is, for messages. */
export function runtimeApiText(api: RuntimeApiAddress): string {
  return api.kind === 'tcp' ? `${api.host}:${api.port}` : `${api.path} on ${api.sshUser}@${api.sshHost}:${api.sshPort} over SSH`
}

export class HaproxyRuntime {
  readonly target: HaproxyTarget
  readonly #ssh: SshRunner
  readonly #localAddress: string | undefined

  constructor(target: HaproxyTarget | ProxyConfig, options: {ssh?: SshRunner; localAddress?: string | undefined} = {}) {
    this.target = {name: target.name, runtimeApi: target.runtimeApi, timeoutMs: target.timeoutMs}
    this.#ssh = options.ssh ?? freshSsh
    this.#localAddress = options.localAddress
  }

  get where(): string {
    return `proxy ${this.target.name} (runtime API ${runtimeApiText(this.target.runtimeApi)})`
  }

  /** One command, its whole answer. Fails with kind 'unreachable' when the API cannot be reached or says nothing in time. */
  async command(line: string): Promise<string> {
    if (/[\n;]/.test(line)) throw new Error(`one runtime API command at a time: ${JSON.stringify(line)}`)
    const api = this.target.runtimeApi
    if (api.kind === 'tcp') return await this.#tcp(api.host, api.port, `${line}\n`)
    const target: SshTarget = {...api.ssh, name: `proxy ${this.target.name}`, host: api.sshHost, port: api.sshPort, user: api.sshUser, localAddress: this.#localAddress}
    try {
      return await this.#ssh(target, (session) => session.unixSocketRequest(api.path, `${line}\n`, this.target.timeoutMs))
    } catch (error) {
      throw new HaproxyError('unreachable', `${this.where}: ${(error as Error).message}`)
    }
  }

  #tcp(host: string, port: number, input: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const out: Buffer[] = []
      let settled = false
      const socket = connect({host, port, ...(this.#localAddress ? {localAddress: this.#localAddress} : {})})
      const fail = (why: string) => {
        if (settled) return
        settled = true
        socket.destroy()
        reject(new HaproxyError('unreachable', `${this.where}: ${why}`))
      }
      socket.setTimeout(this.target.timeoutMs, () => fail(`no answer within ${this.target.timeoutMs} ms`))
      socket.on('connect', () => socket.write(input))
      socket.on('data', (chunk: Buffer) => out.push(chunk))
      socket.on('error', (error: Error & {code?: string}) => fail(`cannot connect (${error.code ?? error.message})`))
      socket.on('close', () => {
        if (settled) return
        settled = true
        resolve(Buffer.concat(out).toString('utf8'))
      })
    })
  }

  /** Every server of `backend`; a backend haproxy does not have is refused. */
  async showServersState(backend: string): Promise<BackendServer[]> {
    checkName(backend, 'backend')
    const text = await this.command(`show servers state ${backend}`)
    return parseServersState(text, `${this.where}: backend ${backend}`)
  }

  /** `set server <backend>/<server> state <state>`; haproxy's refusal is an error naming both. */
  async setServerState(backend: string, server: string, state: ServerAdminState): Promise<void> {
    await this.#silent(`set server ${checkName(backend, 'backend')}/${checkName(server, 'server')} state ${state}`)
  }

  /** `shutdown sessions server <backend>/<server>`: closes every connection through the proxy to that server. */
  async shutdownSessions(backend: string, server: string): Promise<void> {
    await this.#silent(`shutdown sessions server ${checkName(backend, 'backend')}/${checkName(server, 'server')}`)
  }

  /** A command that answers nothing when it succeeds. */
  async #silent(line: string): Promise<void> {
    const answer = (await this.command(line)).trim()
    if (answer !== '') throw new HaproxyError('refused', `${this.where}: "${line}" was refused: ${answer.split('\n')[0]}`)
  }
}

function checkName(name: string, what: string): string {
  if (!NAME.test(name)) throw new HaproxyError('refused', `${what} name ${JSON.stringify(name)} is not a haproxy name (letters, digits, - _ . :)`)
  return name
}

/**
 * `show servers state` output: a format version line ("1"), a "# " header naming the columns, one line per
 * server. Anything else (haproxy's "Can't find backend.", "Permission denied") is a refusal.
 */
export function parseServersState(text: string, where: string): BackendServer[] {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '')
  const header = lines.find((l) => l.startsWith('# '))
  if (lines[0] !== '1' || !header) throw new HaproxyError('refused', `${where}: ${lines[0] ?? 'empty answer'}`)
  const columns = header.slice(2).split(/\s+/)
  const col = (name: string) => {
    const i = columns.indexOf(name)
    if (i < 0) throw new HaproxyError('refused', `${where}: show servers state has no column ${name} (format ${lines[0]})`)
    return i
  }
  const at = {be: col('be_name'), name: col('srv_name'), addr: col('srv_addr'), port: col('srv_port'), op: col('srv_op_state'), admin: col('srv_admin_state'), weight: col('srv_uweight')}
  return lines
    .filter((l) => !l.startsWith('#') && l !== '1')
    .map((line) => {
      const f = line.split(/\s+/)
      const adminState = Number(f[at.admin])
      const weight = Number(f[at.weight])
      const maint = (adminState & MAINT) !== 0
      const drain = (adminState & DRAIN) !== 0
      return {
        backend: f[at.be]!,
        name: f[at.name]!,
        address: f[at.addr]!,
        port: Number(f[at.port]),
        opState: Number(f[at.op]),
        adminState,
        weight,
        maint,
        drain,
        enabled: !maint && !drain && weight > 0,
      }
    })
}
