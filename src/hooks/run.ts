import {spawn} from 'node:child_process'
import {shellQuote} from '../remote/ssh.js'

export interface HookResult {
  code: number | null
  stdout: string
  stderr: string
}

/**
 * Run an MHA-style hook: the configured value is a command line (MHA scripts are often given with
 * their own options), the arguments are MHA's --name=value pairs. Bounded in time.
 */
export function runHook(command: string, args: Record<string, string | number | boolean | undefined>, timeoutMs: number): Promise<HookResult> {
  const argv = Object.entries(args)
    .filter(([, v]) => v !== undefined && v !== false)
    .map(([k, v]) => (v === true ? `--${k}` : `--${k}=${shellQuote(String(v))}`))
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', `${command} ${argv.join(' ')}`], {stdio: ['ignore', 'pipe', 'pipe']})
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (c: Buffer) => out.push(c))
    child.stderr.on('data', (c: Buffer) => err.push(c))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8')})
    })
    child.on('error', (error) => {
      clearTimeout(timer)
      resolve({code: 127, stdout: '', stderr: error.message})
    })
  })
}

/** MHA's contract: 0 is success, 10 is "failed but proceed"; anything else stops the failover. */
export function hookAccepted(result: HookResult): boolean {
  return result.code === 0 || result.code === 10
}
