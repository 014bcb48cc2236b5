import type {ClusterConfig, ServerConfig} from '../config/types.js'
import {hookPasswords, passwordsFor, runHook} from '../hooks/run.js'
import {sshTargetOf} from '../inspect/inspect.js'
import {freshSsh, type SshRunner} from '../remote/session-pool.js'
import {shellQuote} from '../remote/ssh.js'
import {oneLine} from '../util/errors.js'

/** What one route (a replica's host) says of the master's port. */
export interface Route {
  via: string
  verdict: 'reachable' | 'unreachable' | 'route_down'
  detail: string
}

/** The user's secondary_check hook, with MHA's exit codes: 0 master down on every route, 2 a route down, 3 reachable. */
export type HookVerdict = 'down' | 'reachable' | 'route_down' | 'error'

export interface SecondOpinion {
  routes: Route[]
  hook: {verdict: HookVerdict; detail: string} | null
}

/**
 * MHA's masterha_secondary_check idea, built in: from each replica's host, over SSH, try a TCP connect to the
 * master's address and port (the IP, not a name the remote host may not resolve), bounded by `timeoutMs`.
 * Then the user's secondary_check hook, if configured, with MHA's arguments. Changes nothing.
 */
export async function secondOpinion(cluster: ClusterConfig, master: ServerConfig, routes: readonly ServerConfig[], timeoutMs: number, ssh: SshRunner = freshSsh): Promise<SecondOpinion> {
  const seconds = Math.max(1, Math.ceil(timeoutMs / 1000))
  const probe = `timeout ${seconds} bash -c ${shellQuote(`exec 3<>/dev/tcp/${master.ip}/${master.port}`)} 2>/dev/null; echo "tcp=$?"`
  const [results, hook] = await Promise.all([
    Promise.all(
      routes.map(async (via): Promise<Route> => {
        try {
          const result = await ssh({...sshTargetOf(cluster, via), connectTimeoutMs: Math.min(via.ssh.connectTimeoutMs, timeoutMs * 2)}, (session) => session.exec(probe, timeoutMs * 2 + 1000))
          const code = /tcp=(\d+)/.exec(result.stdout)?.[1]
          if (code === '0') return {via: via.name, verdict: 'reachable', detail: `${via.name} connects to ${master.ip}:${master.port}`}
          if (code === undefined) return {via: via.name, verdict: 'route_down', detail: `${via.name}: the probe gave no answer (${oneLine(result.stderr) || `exit ${result.code}`})`}
          return {via: via.name, verdict: 'unreachable', detail: `${via.name} cannot connect to ${master.ip}:${master.port} (${code === '124' ? `no answer in ${seconds} s` : 'refused'})`}
        } catch (error) {
          return {via: via.name, verdict: 'route_down', detail: `${via.name}: ${oneLine(error)}`}
        }
      }),
    ),
    cluster.hooks.secondaryCheck ? runSecondaryCheck(cluster, master, timeoutMs * 3) : Promise.resolve(null),
  ])
  return {routes: results, hook}
}

async function runSecondaryCheck(cluster: ClusterConfig, master: ServerConfig, timeoutMs: number): Promise<{verdict: HookVerdict; detail: string}> {
  // MHA's arguments; the password on the command line only with hooks.pass_passwords.
  const result = await runHook(
    cluster.hooks.secondaryCheck!,
    {user: master.sshUser, master_host: master.hostname, master_ip: master.ip, master_port: master.port, master_user: master.user, ping_type: cluster.monitor.pingType.toUpperCase()},
    timeoutMs,
    passwordsFor(cluster, hookPasswords.secondaryCheck, {orig: master}),
  )
  const verdict: HookVerdict = result.code === 0 ? 'down' : result.code === 3 ? 'reachable' : result.code === 2 ? 'route_down' : 'error'
  const how = result.timedOut ? `did not finish within ${timeoutMs} ms and was killed` : `exited ${result.code}`
  return {verdict, detail: `secondary_check ${how}${result.stderr.trim() ? `: ${oneLine(result.stderr)}` : ''}`}
}
