import {randomBytes} from 'node:crypto'
import {existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join, resolve} from 'node:path'
import {UsageError, UserError} from '../util/errors.js'
import {findProgram, isOurProcess, portOpen, signalOurProcess, startDetached, stopOurProcess, waitFor} from './processes.js'

/**
 * A local etcd cluster for demos and tests: one `etcd` per loopback address, started by pid and stopped by
 * pid. It never uses 127.0.0.1 (where Debian's etcd-server package may run a system etcd).
 */
export interface EtcdMember {
  name: string
  address: string
  clientUrl: string
  /** More client URLs on other ports (tests cut one manager from etcd by port, packets dropped, no reset). */
  extraClientUrls?: string[]
  peerUrl: string
  dataDir: string
  logFile: string
  pid: number | undefined
}

export interface EtcdSandbox {
  dir: string
  token: string
  heartbeatMs: number
  electionMs: number
  members: EtcdMember[]
}

export interface EtcdSandboxOptions {
  dir: string
  addresses: string[]
  clientPort?: number
  /** Each member also serves clients on these ports. */
  extraClientPorts?: number[]
  peerPort?: number
  heartbeatMs?: number
  electionMs?: number
}

export const defaultEtcdAddresses = ['127.0.0.241', '127.0.0.242', '127.0.0.243']
const stateFileName = 'etcd.json'
const healthTimeoutMs = 30_000

/** Its own data directory names the process (a recycled pid running something else is never ours). */
const marker = (member: EtcdMember) => `--data-dir=${member.dataDir}`

/** Distinct loopback addresses other than 127.0.0.1, an odd number of them (1 to 7); one clear line otherwise. */
export function checkEtcdAddresses(addresses: string[]): string[] {
  if (addresses.includes('127.0.0.1')) throw new UsageError('--addresses: 127.0.0.1 is left to a system etcd (Debian starts one there); use other loopback addresses')
  const bad = addresses.find((a) => !/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a) || a.split('.').some((o) => Number(o) > 255))
  if (bad !== undefined) throw new UsageError(`--addresses: ${bad || '(empty)'} is not a loopback address (127.0.0.2 to 127.255.255.254)`)
  if (new Set(addresses).size !== addresses.length) throw new UsageError(`--addresses: ${addresses.join(',')} names an address twice`)
  if (addresses.length % 2 === 0 || addresses.length > 7) throw new UsageError(`--addresses: ${addresses.length} members; give an odd number from 1 to 7 (a quorum needs a majority)`)
  return addresses
}

export function readEtcdState(dir: string): EtcdSandbox | undefined {
  const file = join(resolve(dir), stateFileName)
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as EtcdSandbox) : undefined
}

export function requireEtcdState(dir: string): EtcdSandbox {
  const state = readEtcdState(dir)
  if (!state) throw new UserError(`no etcd sandbox in ${dir}; run "mha sandbox etcd up --dir ${dir}"`)
  return state
}

function writeEtcdState(state: EtcdSandbox): void {
  writeFileSync(join(state.dir, stateFileName), JSON.stringify(state, null, 2) + '\n')
}

/** The client URLs, comma-separated as `--etcd` and `etcdctl --endpoints` take them. */
export function etcdEndpoints(dir: string): string {
  return requireEtcdState(dir)
    .members.map((m) => m.clientUrl)
    .join(',')
}

function memberNamed(state: EtcdSandbox, name: string): EtcdMember {
  const member = state.members.find((m) => m.name === name)
  if (!member) throw new UserError(`etcd sandbox in ${state.dir} has no member ${name} (it has ${state.members.map((m) => m.name).join(', ')})`)
  return member
}

function launch(state: EtcdSandbox, member: EtcdMember, clusterState: 'new' | 'existing'): void {
  const etcd = findProgram('etcd')
  if (!etcd) throw new UserError('etcd is not installed: run "apt-get install -y etcd-server etcd-client" as root (or scripts/setup.sh)')
  const args = [
    `--name=${member.name}`,
    marker(member),
    `--listen-client-urls=${[member.clientUrl, ...(member.extraClientUrls ?? [])].join(',')}`,
    `--advertise-client-urls=${member.clientUrl}`,
    `--listen-peer-urls=${member.peerUrl}`,
    `--initial-advertise-peer-urls=${member.peerUrl}`,
    `--initial-cluster=${state.members.map((m) => `${m.name}=${m.peerUrl}`).join(',')}`,
    `--initial-cluster-state=${clusterState}`,
    `--initial-cluster-token=${state.token}`,
    `--heartbeat-interval=${state.heartbeatMs}`,
    `--election-timeout=${state.electionMs}`,
    '--logger=zap',
    '--log-outputs=stderr',
  ]
  // Read, start and record happen with no await in between, so members started together never lose a pid.
  member.pid = startDetached(etcd, args, member.logFile)
  writeEtcdState(state)
}

/** GET /health: true when the member answers and has a leader that serves a quorum read. */
export async function memberHealthy(member: EtcdMember, timeoutMs = 1000): Promise<boolean> {
  try {
    const response = await fetch(`${member.clientUrl}/health`, {signal: AbortSignal.timeout(timeoutMs)})
    return ((await response.json()) as {health?: string}).health === 'true'
  } catch {
    return false
  }
}

async function waitHealthy(members: EtcdMember[]): Promise<void> {
  for (const member of members)
    await waitFor(`etcd ${member.name} on ${member.clientUrl} to be healthy (see ${member.logFile})`, healthTimeoutMs, async () => {
      if (!isOurProcess(member.pid, marker(member))) throw new UserError(`etcd ${member.name} on ${member.address} exited at start; see ${member.logFile}`)
      return await memberHealthy(member)
    }, 100)
}

/** Start one etcd per address (m1, m2, ...) and return once every member reports healthy. */
export async function startEtcdCluster(options: EtcdSandboxOptions): Promise<EtcdSandbox> {
  const addresses = checkEtcdAddresses(options.addresses)
  const dir = resolve(options.dir)
  const existing = readEtcdState(dir)
  if (existing?.members.some((m) => isOurProcess(m.pid, marker(m)))) throw new UserError(`an etcd sandbox is already running in ${dir}; run "mha sandbox etcd down --dir ${dir}" first`)
  // Only a folder this module made is ever emptied: down removes it whole.
  if (!existing && existsSync(dir) && readdirSync(dir).length > 0) throw new UserError(`${dir} is not empty and holds no etcd sandbox; choose a new or empty --dir`)
  const clientPort = options.clientPort ?? 2379
  const peerPort = options.peerPort ?? 2380
  const extraClientPorts = options.extraClientPorts ?? []
  for (const address of addresses)
    for (const port of [clientPort, peerPort, ...extraClientPorts])
      if (await portOpen(address, port, 200)) throw new UserError(`${address}:${port} is already in use (a system etcd on 0.0.0.0?); stop it or choose other --addresses`)

  rmSync(dir, {recursive: true, force: true})
  mkdirSync(dir, {recursive: true})
  const heartbeatMs = options.heartbeatMs ?? 100
  const state: EtcdSandbox = {
    dir,
    // A fresh token per cluster: a member left over from an earlier one cannot join this one.
    token: `mha-sandbox-${randomBytes(6).toString('hex')}`,
    heartbeatMs,
    electionMs: options.electionMs ?? heartbeatMs * 10,
    members: addresses.map((address, i) => ({
      name: `m${i + 1}`,
      address,
      clientUrl: `http://${address}:${clientPort}`,
      ...(extraClientPorts.length > 0 ? {extraClientUrls: extraClientPorts.map((port) => `http://${address}:${port}`)} : {}),
      peerUrl: `http://${address}:${peerPort}`,
      dataDir: join(dir, `m${i + 1}.etcd`),
      logFile: join(dir, `m${i + 1}.log`),
      pid: undefined,
    })),
  }
  writeEtcdState(state)
  for (const member of state.members) launch(state, member, 'new')
  await waitHealthy(state.members)
  return state
}

/** Stop one member (SIGTERM, or SIGKILL as a crash); its data stays for startEtcdMember. */
export async function stopEtcdMember(dir: string, name: string, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<EtcdMember> {
  const member = memberNamed(requireEtcdState(dir), name)
  if (signal === 'SIGKILL') signalOurProcess(member.pid, marker(member), 'SIGKILL')
  await stopOurProcess(member.pid, marker(member))
  return member
}

/**
 * Start a stopped member again from its data directory. By default it returns once the member is healthy,
 * which needs a quorum: to bring back two members of three, start them together or one after the other.
 */
export async function startEtcdMember(dir: string, name: string, options: {wait?: boolean} = {}): Promise<EtcdMember> {
  const state = requireEtcdState(dir)
  const member = memberNamed(state, name)
  if (isOurProcess(member.pid, marker(member))) throw new UserError(`etcd ${name} is already running (pid ${member.pid})`)
  launch(state, member, 'existing')
  if (options.wait ?? true) await waitHealthy([member])
  return member
}

/**
 * Wait until every running member is healthy. After the leader stops, requests time out until the others
 * have elected a new one (about an election timeout): wait for this before counting on the quorum.
 */
export async function waitEtcdHealthy(dir: string): Promise<void> {
  await waitHealthy(requireEtcdState(dir).members.filter((m) => isOurProcess(m.pid, marker(m))))
}

export interface EtcdMemberStatus {
  member: EtcdMember
  running: boolean
  healthy: boolean
}

export async function etcdStatus(state: EtcdSandbox): Promise<EtcdMemberStatus[]> {
  return await Promise.all(
    state.members.map(async (member) => {
      const running = isOurProcess(member.pid, marker(member))
      return {member, running, healthy: running && (await memberHealthy(member))}
    }),
  )
}

/** Stop every member by its pid and remove the folder; undefined when there is no etcd sandbox there. */
export async function stopEtcdCluster(dir: string): Promise<EtcdSandbox | undefined> {
  const state = readEtcdState(dir)
  if (!state) return undefined
  await Promise.all(state.members.map((m) => stopOurProcess(m.pid, marker(m))))
  rmSync(state.dir, {recursive: true, force: true})
  return state
}
