import {existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {HaproxyRuntime} from '../routing/haproxy.js'
import {UserError} from '../util/errors.js'
import {findProgram, isOurProcess, portOpen, run, startDetached, stopOurProcess, waitFor} from './processes.js'

/** A local HAProxy in front of sandbox servers: a TCP frontend to one writer backend, the runtime API on TCP and a unix socket. */
export interface LocalHaproxy {
  pid: number
  dir: string
  configFile: string
  address: string
  frontendPort: number
  apiPort: number
  socket: string
  backend: string
}

export interface LocalHaproxyOptions {
  /** Its own folder: config, socket, log. */
  dir: string
  address: string
  frontendPort?: number
  apiPort?: number
  backend?: string
  /** The backend's servers; only those `enabled` take connections at start (the others are `disabled`, i.e. in maint). */
  servers: {name: string; host: string; port: number; enabled: boolean}[]
}

export function haproxyProgram(): string {
  const program = findProgram('haproxy')
  if (!program) throw new UserError('--haproxy needs haproxy, which is not installed: run "apt-get install -y haproxy" as root')
  return program
}

/** A backend server's address and state, as haproxy.cfg's "server NAME ..." line and the runtime API's "add server" take them. */
const serverArguments = (s: LocalHaproxyOptions['servers'][number]) => `${s.host}:${s.port}${s.enabled ? '' : ' disabled'}`
const serverLine = (s: LocalHaproxyOptions['servers'][number]) => `  server ${s.name} ${serverArguments(s)}`

/** The configuration file's text: plain TCP, no health checks (mha, not haproxy, decides which server is the writer). */
export function haproxyConfigText(o: Required<Omit<LocalHaproxyOptions, 'dir'>> & {socket: string}): string {
  return [
    '# written by mha sandbox: the writer proxy in front of the sandbox',
    'global',
    `  stats socket ipv4@${o.address}:${o.apiPort} level admin`,
    `  stats socket ${o.socket} level admin mode 600`,
    '  maxconn 4000',
    'defaults',
    '  mode tcp',
    '  timeout connect 2s',
    '  timeout client 1h',
    '  timeout server 1h',
    'frontend mysql_writer_fe',
    `  bind ${o.address}:${o.frontendPort}`,
    `  default_backend ${o.backend}`,
    `backend ${o.backend}`,
    ...o.servers.map(serverLine),
    '',
  ].join('\n')
}

/** Start haproxy in the foreground of its own process (known by pid and its config file), and wait until its runtime API answers. */
export async function startLocalHaproxy(options: LocalHaproxyOptions): Promise<LocalHaproxy> {
  const program = haproxyProgram()
  const o = {address: options.address, frontendPort: options.frontendPort ?? 3306, apiPort: options.apiPort ?? 9999, backend: options.backend ?? 'mysql_writer', servers: options.servers}
  for (const port of [o.frontendPort, o.apiPort]) if (await portOpen(o.address, port, 200)) throw new UserError(`${o.address}:${port} is already in use; stop what listens there or choose another --haproxy-address`)
  mkdirSync(options.dir, {recursive: true})
  const socket = join(options.dir, 'admin.sock')
  const configFile = join(options.dir, 'haproxy.cfg')
  writeFileSync(configFile, haproxyConfigText({...o, socket}))
  run(program, ['-c', '-q', '-f', configFile], 'haproxy -c')
  const log = join(options.dir, 'haproxy.log')
  // -db: no daemon, so the pid started is haproxy's own, stopped by pid at "down".
  const pid = startDetached(program, ['-db', '-f', configFile], log)
  const proxy: LocalHaproxy = {pid, dir: options.dir, configFile, address: o.address, frontendPort: o.frontendPort, apiPort: o.apiPort, socket, backend: o.backend}
  try {
    await waitFor(`haproxy on ${o.address}:${o.apiPort} (see ${log})`, 10_000, async () => {
      if (!isOurProcess(pid, configFile)) throw new UserError(`haproxy exited at start; see ${log}`)
      return existsSync(socket) && (await portOpen(o.address, o.apiPort)) && (await portOpen(o.address, o.frontendPort))
    })
  } catch (error) {
    await stopLocalHaproxy(proxy)
    throw error
  }
  return proxy
}

/**
 * A new server in the writer backend, in maint (a new host is a replica): added at run time through the API and to
 * the configuration file, so that the file still describes what runs.
 */
export async function addToLocalHaproxy(proxy: LocalHaproxy, server: LocalHaproxyOptions['servers'][number]): Promise<void> {
  const api = new HaproxyRuntime({name: 'sandbox haproxy', runtimeApi: {kind: 'tcp', host: proxy.address, port: proxy.apiPort}, timeoutMs: 3000})
  const answer = await api.command(`add server ${proxy.backend}/${server.name} ${serverArguments(server)}`)
  if (!/New server registered/.test(answer)) throw new UserError(`haproxy ${proxy.address}:${proxy.apiPort} did not add ${server.name} to ${proxy.backend}: ${answer.trim()}`)
  const text = readFileSync(proxy.configFile, 'utf8')
  writeFileSync(proxy.configFile, text.replace(/\n$/, '') + `\n${serverLine(server)}\n`)
}

export function localHaproxyRunning(proxy: Pick<LocalHaproxy, 'pid' | 'configFile'>): boolean {
  return isOurProcess(proxy.pid, proxy.configFile)
}

/** Stop it by its pid, only if that pid is still haproxy with this config file. */
export async function stopLocalHaproxy(proxy: Pick<LocalHaproxy, 'pid' | 'configFile'>): Promise<void> {
  await stopOurProcess(proxy.pid, proxy.configFile)
}
