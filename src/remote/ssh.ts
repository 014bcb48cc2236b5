import {existsSync, readFileSync} from 'node:fs'
import {PassThrough, type Readable} from 'node:stream'
import type {AuthenticationType, Client, ConnectConfig, ServerHostKeyAlgorithm} from 'ssh2'
import type {SshSettings} from '../config/types.js'
import {entriesFor, knownHostsName, KnownHostsFileError, preferredHostKeyAlgorithms, readKnownHosts, verifyHostKey, type HostKeyVerdict, type KnownHostEntry} from './known-hosts.js'

export interface SshTarget extends SshSettings {
  /** Server name, for messages. */
  name: string
  host: string
  port: number
  user: string
  /** Local address to connect from. */
  localAddress?: string | undefined
}

export class SshError extends Error {
  /** transfer: fewer bytes arrived than the host sent (readStream's `counted`). */
  readonly kind: 'unreachable' | 'auth' | 'host_key' | 'timeout' | 'exec' | 'transfer'
  constructor(kind: SshError['kind'], message: string) {
    super(message)
    this.kind = kind
  }
}

export interface ExecResult {
  code: number | null
  signal: string | undefined
  stdout: string
  stderr: string
}

/** POSIX shell quoting for one argument. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`
}

/** One SSH connection to one host, reused for every command of a run. */
export class SshSession {
  readonly target: SshTarget
  readonly #client: Client
  /** Set when the connection is gone (the host rebooted, sshd killed): every later use fails at once. */
  #lost: SshError | null = null
  readonly #streams = new Set<PassThrough>()

  private constructor(target: SshTarget, client: Client) {
    this.target = target
    this.#client = client
    client.on('close', () => {
      this.#lost ??= new SshError('unreachable', `${target.name} (${target.host}): the SSH connection was lost`)
      for (const stream of this.#streams) stream.destroy(this.#lost)
    })
  }

  /** The connection is gone: open a new session to try again. */
  get lost(): boolean {
    return this.#lost !== null
  }

  static async open(target: SshTarget): Promise<SshSession> {
    const where = `${target.name} (${target.user}@${target.host}:${target.port})`
    const auth = authOf(target, where)
    let mine: KnownHostEntry[]
    try {
      mine = entriesFor(readKnownHosts(target.knownHostsFile), target.host, target.port)
    } catch (error) {
      if (error instanceof KnownHostsFileError) throw new SshError('host_key', `${where}: ${error.message}`)
      throw error
    }
    const hostKeyAlgorithms = target.hostKeyAlgorithms ?? preferredHostKeyAlgorithms(mine)
    let verdict: HostKeyVerdict | undefined
    const connectConfig: ConnectConfig = {
      host: target.host,
      port: target.port,
      username: target.user,
      ...auth.config,
      readyTimeout: target.connectTimeoutMs,
      ...(target.localAddress ? {localAddress: target.localAddress} : {}),
      ...(hostKeyAlgorithms ? {algorithms: {serverHostKey: hostKeyAlgorithms as ServerHostKeyAlgorithm[]}} : {}),
      hostVerifier: (key: Buffer) => {
        verdict = verifyHostKey(mine, key)
        return verdict.kind === 'match'
      },
      // A host gone without a TCP reset is noticed in about 6 s, not after the kernel's minutes.
      keepaliveInterval: 2000,
      keepaliveCountMax: 3,
    }
    // Loaded with the first session: a command that opens none (a switchover) does not load the SSH client.
    const {Client: SshClient} = await import('ssh2')
    const client = new SshClient()
    return await new Promise<SshSession>((resolve, reject) => {
      let settled = false
      const fail = (error: SshError) => {
        if (settled) return
        settled = true
        client.end()
        reject(error)
      }
      client.on('ready', () => {
        settled = true
        client.removeAllListeners('error')
        client.on('error', () => undefined)
        resolve(new SshSession(target, client))
      })
      client.on('error', (error: Error & {level?: string; code?: string}) => {
        const refused = verdict && hostKeyRefusal(verdict, target)
        if (refused) return fail(new SshError('host_key', `${where}: ${refused}`))
        if (error.level === 'client-authentication') return fail(new SshError('auth', `${where}: key authentication refused (tried ${auth.tried})`))
        if (/no matching host key/i.test(error.message))
          return fail(new SshError('host_key', `${where}: the host offers none of the host key algorithms ${(hostKeyAlgorithms ?? []).join(', ')}; fix HostKeyAlgorithms in ssh_options`))
        if (error.level === 'client-timeout' || /timed out/i.test(error.message)) return fail(new SshError('timeout', `${where}: SSH handshake timed out`))
        fail(new SshError('unreachable', `${where}: cannot connect over SSH (${error.code ?? error.message})`))
      })
      client.on('close', () => fail(new SshError('unreachable', `${where}: connection closed before SSH was ready`)))
      // ssh2 reads (and decrypts) the key in connect(), before any socket: a bad key throws here.
      try {
        client.connect(connectConfig)
        // The handshake and each command are a few small request/reply packets: with Nagle and the peer's delayed
        // ACK, some would wait about 40 ms for the previous one's acknowledgement (the handshake did, once, before
        // the user authentication). Set before the first packet.
        client.setNoDelay(true)
      } catch (error) {
        fail(keyRefusal(error as Error, target, where))
      }
    })
  }

  /** Run one shell command line; the caller quotes arguments with shellQuote. */
  async exec(command: string, timeoutMs = 30_000): Promise<ExecResult> {
    const where = `${this.target.name} (${this.target.host})`
    if (this.#lost) throw this.#lost
    return await new Promise<ExecResult>((resolve, reject) => {
      // The bound covers opening the channel too: on a kept connection to a host gone silent, no answer ever comes.
      let timedOut = false
      let opened: {signal(name: string): unknown; close(): unknown} | undefined
      const timer = setTimeout(() => {
        timedOut = true
        opened?.signal('KILL')
        opened?.close()
        reject(new SshError('timeout', `${where}: command did not finish within ${timeoutMs} ms`))
      }, timeoutMs)
      this.#client.exec(command, (error, channel) => {
        if (error) {
          clearTimeout(timer)
          return reject(new SshError('exec', `${where}: cannot run a command: ${error.message}`))
        }
        opened = channel
        if (timedOut) {
          channel.close()
          return
        }
        const out: Buffer[] = []
        const err: Buffer[] = []
        let code: number | null = null
        let signal: string | undefined
        channel.on('data', (chunk: Buffer) => out.push(chunk))
        channel.stderr.on('data', (chunk: Buffer) => err.push(chunk))
        channel.on('exit', (c: number | null, s?: string) => {
          code = c
          signal = s
        })
        // 'close' always comes, 'exit' may not.
        channel.on('close', () => {
          clearTimeout(timer)
          resolve({code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8')})
        })
        channel.end()
      })
    })
  }

  /**
   * The stdout of a command as a stream, for reading large files (binlogs) without buffering them.
   * Destroying the stream closes the channel. A non-zero exit fails the stream with stderr. It fails when no
   * byte arrives for idleTimeoutMs while the reader wants more (a host gone). `counted`: the host also counts
   * what it sends, and a stream that received fewer bytes fails at its end instead of ending (kind transfer).
   */
  readStream(command: string, idleTimeoutMs = 10_000, stdin?: string, options: {counted?: boolean} = {}): Readable {
    const out = new PassThrough()
    const counted = options.counted === true
    let received = 0
    const remote = counted ? countedCommand(command) : command
    // A stream abandoned by its reader must not crash the process when it fails later.
    out.on('error', () => undefined)
    if (this.#lost) {
      out.destroy(this.#lost)
      return out
    }
    this.#streams.add(out)
    out.on('close', () => this.#streams.delete(out))
    let timer: NodeJS.Timeout | undefined
    const arm = (): void => {
      clearTimeout(timer)
      timer = setTimeout(() => out.destroy(new SshError('timeout', `${this.target.name}: no data for ${idleTimeoutMs} ms from "${command}"`)), idleTimeoutMs)
    }
    arm()
    out.on('close', () => clearTimeout(timer))
    this.#client.exec(remote, (error, channel) => {
      if (error) {
        out.destroy(new SshError('exec', `${this.target.name}: cannot run a command: ${error.message}`))
        return
      }
      const err: Buffer[] = []
      let code: number | null = null
      channel.stderr.on('data', (chunk: Buffer) => err.push(chunk))
      channel.on('exit', (c: number | null) => {
        code = c
      })
      channel.on('close', () => {
        clearTimeout(timer)
        const stderr = Buffer.concat(err).toString('utf8')
        if (code !== null && code !== 0 && !out.destroyed)
          out.destroy(new SshError('exec', `${this.target.name}: "${command}" exited ${code}: ${withoutSentLine(stderr).trim()}`))
        else if (counted && !out.destroyed) {
          const problem = transferProblem(stderr, received)
          if (problem) out.destroy(new SshError('transfer', `${this.target.name}: "${command}": ${problem}; read it again`))
          else out.end()
        } else out.end()
      })
      channel.on('data', (chunk: Buffer) => {
        received += chunk.length
        if (!out.write(chunk)) {
          // The reader is busy: no data is expected until it drains.
          clearTimeout(timer)
          channel.pause()
          out.once('drain', () => {
            arm()
            channel.resume()
          })
        } else arm()
      })
      out.on('close', () => channel.close())
      // Given on stdin (a login option file read from /dev/stdin): never on the command line.
      channel.end(stdin)
    })
    return out
  }

  /**
   * Run a command with `input` piped into its stdin (a stream relayed from another host); resolves when it
   * ends. Fails when the input fails, or no byte moves for idleTimeoutMs.
   */
  async pipeInto(command: string, input: Readable, idleTimeoutMs = 60_000): Promise<ExecResult> {
    if (this.#lost) throw this.#lost
    const where = `${this.target.name} (${this.target.host})`
    return await new Promise<ExecResult>((resolve, reject) => {
      // Opening the channel is bounded too: a kept connection to a host gone silent never answers.
      let late = false
      const opening = setTimeout(() => {
        late = true
        input.destroy()
        reject(new SshError('timeout', `${where}: no channel for "${command}" within ${idleTimeoutMs} ms`))
      }, idleTimeoutMs)
      this.#client.exec(command, (error, channel) => {
        clearTimeout(opening)
        if (late) return void channel?.close()
        if (error) return reject(new SshError('exec', `${where}: cannot run a command: ${error.message}`))
        const out: Buffer[] = []
        const err: Buffer[] = []
        let code: number | null = null
        let signal: string | undefined
        let failed: Error | undefined
        let timer: NodeJS.Timeout | undefined
        const fail = (e: Error) => {
          if (failed) return
          failed = e
          clearTimeout(timer)
          input.destroy()
          channel.signal('KILL')
          channel.close()
        }
        const arm = () => {
          clearTimeout(timer)
          timer = setTimeout(() => fail(new SshError('timeout', `${where}: no data moved for ${idleTimeoutMs} ms into "${command}"`)), idleTimeoutMs)
        }
        arm()
        input.on('data', arm)
        input.on('error', (e: Error) => fail(e))
        input.pipe(channel)
        channel.on('data', (chunk: Buffer) => out.push(chunk))
        channel.stderr.on('data', (chunk: Buffer) => err.push(chunk))
        channel.on('exit', (c: number | null, s?: string) => {
          code = c
          signal = s
        })
        channel.on('close', () => {
          clearTimeout(timer)
          if (failed) return reject(failed)
          resolve({code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8')})
        })
      })
    })
  }

  /**
   * Send `input` to a unix socket on the host (OpenSSH stream-local forwarding, as `ssh -L` to a socket does, so
   * no program is needed there) and return all it answers until it closes the connection. Bounded by timeoutMs.
   */
  async unixSocketRequest(path: string, input: string, timeoutMs: number): Promise<string> {
    const where = `${this.target.name} (${this.target.host})`
    if (this.#lost) throw this.#lost
    return await new Promise<string>((resolve, reject) => {
      let opened: {close(): unknown} | undefined
      let done = false
      const timer = setTimeout(() => {
        done = true
        opened?.close()
        reject(new SshError('timeout', `${where}: socket ${path} did not answer within ${timeoutMs} ms`))
      }, timeoutMs)
      this.#client.openssh_forwardOutStreamLocal(path, (error, channel) => {
        if (done) return void channel?.close()
        if (error) {
          done = true
          clearTimeout(timer)
          return reject(new SshError('exec', `${where}: cannot open socket ${path} over SSH: ${error.message}`))
        }
        opened = channel
        const out: Buffer[] = []
        channel.on('data', (chunk: Buffer) => out.push(chunk))
        channel.on('error', () => undefined)
        // The socket's end of the stream (EOF) is the whole answer; sshd closes the channel only once we close ours.
        const finish = () => {
          if (done) return
          done = true
          clearTimeout(timer)
          channel.close()
          resolve(Buffer.concat(out).toString('utf8'))
        }
        channel.on('end', finish)
        channel.on('close', finish)
        channel.write(input)
      })
    })
  }

  close(): void {
    this.#client.end()
  }
}

/**
 * `command` run so that the host also says how many bytes it sent: its stdout goes to us through `tee`, which also
 * feeds `wc -c`, whose count comes last on stderr. The command's own exit status is kept (a pipeline's would be
 * wc's). POSIX sh and Linux's /dev/fd: no bash needed. A count, not a digest: it is what catches bytes lost on the
 * way at almost no cost, and a changed byte inside a binlog event fails the event's CRC32.
 */
export function countedCommand(command: string): string {
  return [
    'exec 3>&1',
    `mha_status=$( { { { ( ${command} ); echo $? >&5; } | tee /dev/fd/6 >&3; } 6>&1 | wc -c | sed 's/^ */mha-sent /' >&4; } 5>&1 4>&2 )`,
    'exit "${mha_status:-1}"',
  ].join('\n')
}

const SENT_LINE = /^mha-sent .*$/gm

function withoutSentLine(stderr: string): string {
  return stderr.replace(SENT_LINE, '')
}

/** Why the bytes received are not as many as the host sent, or null when they are. */
export function transferProblem(stderr: string, received: number): string | null {
  const sent = /^mha-sent (\d+)\s*$/m.exec(stderr)?.[1]
  if (sent === undefined) return `the host did not say how many bytes it sent (${received} arrived)`
  if (Number(sent) !== received) return `the host sent ${sent} bytes, ${received} arrived`
  return null
}

export async function withSsh<T>(target: SshTarget, fn: (session: SshSession) => Promise<T>): Promise<T> {
  const session = await SshSession.open(target)
  try {
    return await fn(session)
  } finally {
    session.close()
  }
}

/** Why a host key verdict refuses the host, as one sentence; undefined for a match. */
function hostKeyRefusal(verdict: HostKeyVerdict, target: SshTarget): string | undefined {
  const name = knownHostsName(target.host, target.port)
  const file = target.knownHostsFile
  switch (verdict.kind) {
    case 'match':
      return undefined
    case 'unknown':
      return `host ${name} is not in ${file}; add its key (ssh-keyscan) after checking it`
    case 'mismatch':
      return `host key (${verdict.offeredType}) of ${name} does not match ${file}, which holds ${verdict.known.join(', ')} for it; if the host was rebuilt, replace its entry after checking the new key`
    case 'revoked':
      return `host key (${verdict.offeredType}) of ${name} is marked @revoked in ${file}; refusing to connect`
    case 'ca_only':
      return `${file} trusts only a @cert-authority for ${name}, and mha's SSH client (ssh2) cannot negotiate host certificates; add the host's own key (ssh-keyscan) to ${file} after checking it`
  }
}

/** The key file's bytes and the agent, for ssh2; what was tried, for messages. */
function authOf(target: SshTarget, where: string): {config: Pick<ConnectConfig, 'privateKey' | 'passphrase' | 'agent' | 'authHandler'>; tried: string} {
  const config: Pick<ConnectConfig, 'privateKey' | 'passphrase' | 'agent' | 'authHandler'> = {}
  // The configured methods only, in ssh2's own order: by default ssh2 first tries "none" (no authentication at
  // all), which sshd refuses to any account with a key or a password: one more round trip in every handshake.
  const methods: AuthenticationType[] = []
  const tried: string[] = []
  if (target.privateKeyFile !== undefined) {
    const file = target.privateKeyFile
    let privateKey: Buffer
    try {
      privateKey = readFileSync(file)
    } catch {
      throw new SshError('auth', `${where}: cannot read SSH key ${file}; set ssh.private_key_file in the cluster file`)
    }
    config.privateKey = privateKey
    if (target.privateKeyPassphrase) config.passphrase = target.privateKeyPassphrase.reveal()
    methods.push('publickey')
    tried.push(file)
  }
  if (target.agent !== undefined) {
    if (!existsSync(target.agent)) throw new SshError('auth', `${where}: ssh-agent socket ${target.agent} does not exist; start the agent, or fix ssh.agent (false: no agent) or SSH_AUTH_SOCK`)
    config.agent = target.agent
    methods.push('agent')
    tried.push(`the ssh-agent at ${target.agent}`)
  }
  if (tried.length === 0) throw new SshError('auth', `${where}: no SSH key file and no ssh-agent; set ssh.private_key_file or ssh.agent`)
  config.authHandler = methods
  return {config, tried: tried.join(' and ')}
}

/** ssh2's refusal of the key as one line naming the file and the field to set; its messages never hold the passphrase. */
function keyRefusal(error: Error, target: SshTarget, where: string): SshError {
  const file = target.privateKeyFile
  if (/no passphrase given/i.test(error.message))
    return new SshError('auth', `${where}: SSH key ${file} is encrypted; set ssh.private_key_passphrase ({env: NAME} or {file: PATH}) in the cluster file`)
  if (/bad passphrase/i.test(error.message)) return new SshError('auth', `${where}: SSH key ${file} does not open with the passphrase from ${target.privateKeyPassphrase?.source}; fix ssh.private_key_passphrase`)
  if (/privateKey/.test(error.message)) return new SshError('auth', `${where}: SSH key ${file} cannot be used (${error.message}); set ssh.private_key_file to an OpenSSH private key`)
  return new SshError('unreachable', `${where}: cannot start SSH (${error.message})`)
}
