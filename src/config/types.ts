import type {Secret} from '../util/secret.js'

export type GtidUse = 'auto' | 'on' | 'off'
export type PingType = 'connect' | 'select' | 'insert'

/** One server with every inherited value filled in. */
export interface ServerConfig {
  name: string
  hostname: string
  /** Address mha connects to over SQL. */
  ip: string
  port: number
  /** The SQL login mha uses on this server: its own (MHA's [serverN] user/password) or the cluster's. */
  user: string
  password: Secret
  /** Where that login is configured, for an access-denied message ("servers[1].password in FILE"). */
  loginFields: string
  sshHost: string
  sshPort: number
  sshUser: string
  candidateMaster: boolean
  noMaster: boolean
  ignoreFail: boolean
  masterBinlogDirs: string[]
  remoteWorkdir: string
  clientBindir: string | undefined
  /** How mha reaches this host over SSH: the cluster's ssh section with this server's ssh_options applied. */
  ssh: SshSettings
  /** How mha plan --rebuild reaches this server's data: its datadir and the commands that stop and start its mariadbd over SSH. */
  rebuild?: {datadir?: string; stopCommand?: string; startCommand?: string}
}

/** How mha reaches a host over SSH: a server's host, or a binlog server. */
export interface SshHost {
  name: string
  sshHost: string
  sshPort: number
  sshUser: string
  ssh: SshSettings
}

/**
 * A host with a copy of the master's binlog files (MHA's [binlogN]): the dead master's tail is saved from it
 * when the master's own host cannot be read over SSH.
 */
export interface BinlogServerConfig extends SshHost {
  hostname: string
  masterBinlogDirs: string[]
  remoteWorkdir: string
  clientBindir: string | undefined
}

export interface SshSettings {
  /** Undefined only when no key file is configured or found and an ssh-agent is used instead. */
  privateKeyFile: string | undefined
  privateKeyPassphrase: Secret | undefined
  knownHostsFile: string
  connectTimeoutMs: number
  /** The only host key algorithms to offer (ssh_options HostKeyAlgorithms); undefined: ordered by known_hosts. */
  hostKeyAlgorithms: string[] | undefined
  /** The ssh-agent socket to authenticate through, if any. */
  agent: string | undefined
}

export interface HookConfig {
  shutdown?: string
  masterIpFailover?: string
  masterIpOnlineChange?: string
  report?: string
  secondaryCheck?: string
  /** MHA's --orig_master_password/--new_master_password (and secondary_check's --master_password) on the hooks' command lines. */
  passPasswords: boolean
}

/** How the manager reaches a proxy's runtime API: TCP from the manager, or a unix socket on the proxy's host over SSH. */
export type RuntimeApiAddress =
  | {kind: 'tcp'; host: string; port: number}
  | {kind: 'socket'; path: string; sshHost: string; sshPort: number; sshUser: string; ssh: SshSettings}

/** One HAProxy in front of the cluster (routing.haproxy[i]). */
export interface ProxyConfig {
  name: string
  runtimeApi: RuntimeApiAddress
  /** The backend clients' writes go through. */
  writerBackend: string
  /** Where clients connect, for verification. */
  frontend: {host: string; port: number}
  /** mha server name -> its server name in the writer backend (every mha server has one). */
  servers: Record<string, string>
  verifyUser: string
  verifyPassword: Secret
  timeoutMs: number
}

/** A cluster file after validation, defaults and secret resolution. */
export interface ClusterConfig {
  name: string
  /** The file it came from, for error messages. */
  file: string
  user: string
  password: Secret
  replUser: string
  replPassword: Secret | undefined
  gtid: GtidUse
  /** Local address mha's connections leave from, if set. */
  sourceAddress: string | undefined
  /** The ssh section with its ssh_options applied; each server has its own resolved copy. */
  ssh: SshSettings
  monitor: {pingIntervalMs: number; pingType: PingType; connectTimeoutMs: number; failuresBeforeDead: number; lastFailoverMinute: number; keepSshOpen: boolean}
  failover: {
    checkReplDelay: boolean
    maxLagBytes: number
    latestPriority: boolean
    checkReplFilter: boolean
    multiTierSlave: boolean
    skipResetSlave: boolean
    maxSecondsBehindMaster: number
    waitTimeoutMs: number
  }
  switchover: {maxLagSeconds: number; runningUpdatesLimit: number; runningSecondsLimit: number; origMasterIsNewSlave: boolean}
  hooks: HookConfig
  /** Proxies in front of the cluster; empty without a routing section. */
  proxies: ProxyConfig[]
  servers: ServerConfig[]
  /** Binlog servers; empty when none are configured. */
  binlogServers: BinlogServerConfig[]
}
