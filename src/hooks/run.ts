import {spawn} from 'node:child_process'
import type {ClusterConfig, ServerConfig} from '../config/types.js'
import {shellQuote} from '../remote/ssh.js'
import {redact, type Secret} from '../util/secret.js'

export interface HookResult {
  code: number | null
  stdout: string
  stderr: string
  /** It did not finish in time and was killed, with every process it started (code is then null). */
  timedOut?: boolean
}

/** Where MHA hands a hook a password: the argument MHA puts on its command line, mha's environment variable, and whose password it is. */
export interface HookPassword {
  arg: string
  env: string
  of: 'orig' | 'new'
}

/** MHA 0.58's password arguments per hook call (MasterFailover, MasterRotate, HealthCheck), with the variable that always carries it. */
export const hookPasswords = {
  masterIpFailoverStart: [{arg: 'new_master_password', env: 'MHA_NEW_MASTER_PASSWORD', of: 'new'}],
  masterIpOnlineChange: [
    {arg: 'orig_master_password', env: 'MHA_ORIG_MASTER_PASSWORD', of: 'orig'},
    {arg: 'new_master_password', env: 'MHA_NEW_MASTER_PASSWORD', of: 'new'},
  ],
  secondaryCheck: [{arg: 'master_password', env: 'MHA_MASTER_PASSWORD', of: 'orig'}],
} satisfies Record<string, HookPassword[]>

/** The passwords a run_hook step's hook gets: MHA gives them to the IP hooks only (online change: both phases; failover: start). */
export function stepHookPasswords(hook: 'master_ip_failover' | 'master_ip_online_change' | 'report'): readonly HookPassword[] {
  return hook === 'master_ip_online_change' ? hookPasswords.masterIpOnlineChange : hook === 'master_ip_failover' ? hookPasswords.masterIpFailoverStart : []
}

export interface HookPasswords {
  given: {arg: string; env: string; secret: Secret}[]
  onCommandLine: boolean
}

/**
 * The admin passwords a hook gets, each the password of the server it names (MHA's orig/new master's own
 * password from its [serverN] block): always in the environment, on the command line only with hooks.pass_passwords.
 */
export function passwordsFor(cluster: ClusterConfig, which: readonly HookPassword[], masters: {orig?: ServerConfig | undefined; new?: ServerConfig | undefined} = {}): HookPasswords {
  return {given: which.map((p) => ({arg: p.arg, env: p.env, secret: masters[p.of]?.password ?? cluster.password})), onCommandLine: cluster.hooks.passPasswords}
}

/** How a preview shows the passwords a hook gets, masked (as MHA logs its own commands with xxx). */
export function describePasswords(cluster: ClusterConfig, which: readonly HookPassword[]): string {
  const args = cluster.hooks.passPasswords ? which.map((p) => ` --${p.arg}=[secret]`).join('') : ''
  return `${args}; the password in ${which.map((p) => p.env).join(' and ')}`
}

/**
 * Run an MHA-style hook: the configured value is a command line (MHA scripts are often given with
 * their own options), the arguments are MHA's --name=value pairs, then the passwords as MHA appends them.
 * Bounded in time. What the hook prints comes back with the password masked, since it may echo its arguments.
 */
export function runHook(
  command: string,
  args: Record<string, string | number | boolean | undefined>,
  timeoutMs: number,
  passwords?: HookPasswords,
): Promise<HookResult> {
  const argv = Object.entries(args)
    .filter(([, v]) => v !== undefined && v !== false)
    .map(([k, v]) => (v === true ? `--${k}` : `--${k}=${shellQuote(String(v))}`))
  const env: NodeJS.ProcessEnv = {...process.env}
  for (const p of passwords?.given ?? []) {
    env[p.env] = p.secret.reveal()
    if (passwords!.onCommandLine) argv.push(`--${p.arg}=${shellQuote(p.secret.reveal())}`)
  }
  const hide = (text: string) => redact(text, passwords?.given.map((p) => p.secret) ?? [])
  return new Promise((resolve) => {
    // Its own process group: a timeout kills what the hook started too (a script's sleep, ssh or curl would
    // otherwise hold its output open, and the caller, long after the hook itself was killed).
    const child = spawn('sh', ['-c', `${command} ${argv.join(' ')}`], {stdio: ['ignore', 'pipe', 'pipe'], env, detached: true})
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (c: Buffer) => out.push(c))
    child.stderr.on('data', (c: Buffer) => err.push(c))
    let timedOut = false
    let done = false
    let grace: NodeJS.Timeout | undefined
    const finish = (code: number | null) => {
      if (done) return
      done = true
      clearTimeout(timer)
      clearTimeout(grace)
      resolve({code, stdout: hide(Buffer.concat(out).toString('utf8')), stderr: hide(Buffer.concat(err).toString('utf8')), ...(timedOut ? {timedOut} : {})})
    }
    const timer = setTimeout(() => {
      timedOut = true
      try {
        process.kill(-child.pid!, 'SIGKILL')
      } catch {
        child.kill('SIGKILL')
      }
    }, timeoutMs)
    child.on('close', (code) => finish(timedOut ? null : code))
    // The hook is over when its shell exits, as for MHA's system(): something it left running in the background
    // (or in a session of its own, out of reach of the kill) may hold the output open; what came by then is kept.
    child.on('exit', (code) => {
      grace = setTimeout(() => {
        child.stdout.destroy()
        child.stderr.destroy()
        finish(timedOut ? null : code)
      }, 200)
    })
    child.on('error', (error) => {
      err.push(Buffer.from(error.message))
      finish(127)
    })
  })
}

/** MHA's contract: 0 is success, 10 is "failed but proceed"; anything else stops the failover. */
export function hookAccepted(result: HookResult): boolean {
  return result.code === 0 || result.code === 10
}
