import type {BinlogCoordinates} from '../dialect/types.js'

export type PlanKind = 'noop' | 'failover' | 'switchover' | 'repair' | 'rejoin' | 'rebuild' | 'remove'

/** A value a later step takes from an earlier step's output, resolved at apply time. */
export interface OutputRef {
  fromStep: string
  output: string
}

/** A relay-log range of `source` that `server` lacks (MHA's read->latest diff). */
export interface RelayDiff {
  source: string
  /** The relay file and byte offset where the missing events start, and every relay file after it. */
  files: string[]
  offset: number
  /** The master coordinates the range starts after (the target's Read_Master_Log_Pos). */
  after: BinlogCoordinates
  /** The master coordinates it ends at (the source's Read_Master_Log_Pos). */
  until: BinlogCoordinates
}

/** The closed vocabulary of step kinds: every effect of every plan is one of these. */
export type Step =
  | StepBase<'stop_replica_io', Record<string, never>>
  | StepBase<'fence_master', {method: 'hook' | 'read_only_and_kill'; hook?: string; ipHook?: string}>
  | StepBase<'save_master_binlog', {dir: string | null; from: BinlogCoordinates; files: string[]; binlogServer?: string}>
  | StepBase<'wait_relay_log_applied', {until: BinlogCoordinates}>
  | StepBase<'catch_up_from', {source: string}>
  | StepBase<'save_relay_diff', {target: string; diff: RelayDiff}>
  | StepBase<
      'apply_logs',
      {
        /** Where the target's SQL thread stopped: if short of its read position, its own relay tail comes first. */
        ownRelay: OutputRef | null
        relayDiff: OutputRef | null
        masterTail: OutputRef | null
      }
    >
  | StepBase<'detach_replication', {resetSlaveAll: boolean}>
  | StepBase<
      'run_hook',
      {
        hook: 'master_ip_failover' | 'master_ip_online_change' | 'report'
        command: string
        path: string
        /** MHA's orig_master and new_master for this call, where they are not the decision's: a switchover's rollback gives the address back to the old master. */
        origMaster?: string
        newMaster?: string
      }
    >
  | StepBase<'check_switchover', {target: string; maxLagSeconds: number; runningUpdatesLimit: number}>
  /** stopReplication: the old master of a master-master pair also stops replicating from its standby. */
  | StepBase<'block_writes', {stopReplication?: boolean}>
  /** startReplication: the undo of a pair's block also starts the old master's replication again. */
  | StepBase<'unblock_writes', {startReplication?: boolean}>
  /** After the promotion: the old master's final position still holds, its waiting clients go, its lock is released. */
  | StepBase<'release_write_block', {finalPosition: OutputRef; newMaster: string}>
  | StepBase<'wait_caught_up', {source: string; position: OutputRef; gtid: boolean}>
  /**
   * A switchover's new master, once it has executed everything the blocked old master wrote and before it takes
   * writes: its binlog coordinates, where the others start. A read: it changes nothing.
   */
  | StepBase<'record_position', Record<string, never>>
  | StepBase<'enable_writes', Record<string, never>>
  | StepBase<
      'repoint_replica',
      {
        source: string
        /** The CHANGE MASTER target: the new master as replicas reach it. */
        host: string
        port: number
        user: string
        gtid: boolean
        coordinates: OutputRef | null
        /** The statement as it will run, the password masked and the coordinates still to be resolved. */
        preview: string
        /** A former master: its GTID replication starts from its own binlog position (MariaDB gtid_slave_pos is set from it). */
        formerMaster?: boolean
        /** Rejoin, file/position: the new master's coordinates recorded by an earlier (failover) plan's journal. */
        at?: BinlogCoordinates
        /** Rejoin after a flashback (MariaDB GTID): the position the former master now matches, for gtid_slave_pos. */
        gtidSlavePos?: string
      }
    >
  | StepBase<'verify_replication', {master: string; replicas: string[]}>
  /** Rejoin: the former master stops taking writes before it is compared again and re-pointed. */
  | StepBase<'set_read_only', Record<string, never>>
  /**
   * Rejoin: rewind exactly the saved range of the former master's own binlog (its extra transactions) with
   * mariadb-binlog --flashback, not binlogged (sql_log_bin=0); with GTIDs its binlog is then reset (RESET MASTER).
   */
  | StepBase<'flashback_binlog', {saved: OutputRef; from: BinlogCoordinates; end: BinlogCoordinates; transactions: number; gtids: string | null; resetBinlog: boolean}>
  // Rebuild (mha plan --rebuild): a physical copy of a healthy server, streamed through the manager.
  /** mariadb-backup --backup --slave-info on `source`, relayed into mbstream -x in `dir` on the target, then --prepare. */
  | StepBase<'copy_backup', {source: string; dir: string}>
  /** The target's mariadbd stopped by the cluster file's rebuild.stop_command (null: it must already be down). */
  | StepBase<'stop_server', {command: string | null}>
  /** The prepared copy in `dir` becomes the target's datadir; an existing datadir is kept aside. */
  | StepBase<'install_backup', {dir: string; datadir: string; copy: OutputRef}>
  | StepBase<'start_server', {command: string}>
  /** Replicate from the master from the copy's recorded position (GTID slave_pos, or the source's executed master coordinates). */
  | StepBase<'replicate_from_copy', {source: string; host: string; port: number; user: string; gtid: boolean; copy: OutputRef}>
  // Remove (mha plan --remove): the server leaves the active topology.
  | StepBase<'mark_out_of_service', {reason: string}>
  // Routing (the cluster file's routing section): one pair of steps per proxy.
  /** The dead master out of the proxy's writer backend (state maint), then its sessions through the proxy shut. */
  | StepBase<'route_drain', {proxy: string; backend: string; backendServer: string}>
  /** Once the new master takes writes: every other server in maint first, then the new master ready; verified through the frontend. */
  | StepBase<'route_writer', {proxy: string; backend: string; writer: string; others: string[]; frontend: string}>

interface StepBase<T extends string, P> {
  id: string
  type: T
  /** The server the step acts on (the manager itself for hooks). */
  server: string
  params: P
  /** Steps that must have succeeded first. Steps whose dependencies are met may run in parallel. */
  after: string[]
  /** Steps that must have ended first, whether they succeeded or not (the step copes with either). */
  settledAfter?: string[]
  /** What the step serves: "master" (the new master's recovery and promotion), "replica:NAME", or "finish". */
  group?: string
  /** Names of the values this step hands to later steps. */
  outputs: string[]
  /** Why the step is there, for the reviewer. */
  reason: string
}

export type StepType = Step['type']

export interface RuleVerdict {
  rule: string
  passed: boolean
  detail: string
}

export interface Candidate {
  server: string
  eligible: boolean
  chosen: boolean
  /** The rule that decided, in words. */
  reason: string
  rules: RuleVerdict[]
}

export interface DataLoss {
  none: boolean
  statement: string
  /** Coordinates in the dead master's binlog after which events are lost, if any. */
  lostAfter: BinlogCoordinates | null
  /** GTIDs known to be lost, if any. */
  lostGtids: string | null
  /** Servers that will not be recovered. */
  abandoned: string[]
}

export interface ObservedServer {
  name: string
  address: string
  reachable: boolean
  role: 'master' | 'replica' | 'other' | 'down'
  version: string | null
  serverId: number | null
  logBin: boolean | null
  readOnly: boolean | null
  source: string | null
  read: BinlogCoordinates | null
  executed: BinlogCoordinates | null
  gtidMode: string | null
  gtidPosition: string | null
  /** Null when not inspected: a switchover needs no SSH, and its inspection opens none. */
  ssh: boolean | null
}

export interface Fact {
  server: string
  fact: string
  value: string
}

export interface Plan {
  format: 1
  /** Outside the compared part: the same snapshot and config give the same plan but for this. */
  header: {tool: string; createdAt: string; configFile: string}
  cluster: string
  kind: PlanKind
  /** `settings`: the cluster file's settings digest (settingsDigest): apply refuses a plan made from other settings. */
  observed: {servers: ObservedServer[]; facts: Fact[]; fingerprint: string; settings: string}
  decision: {
    summary: string
    replicationMode: 'gtid' | 'file'
    deadMaster: string | null
    /** A switchover's live master, which the plan moves writes away from (never set with deadMaster). */
    oldMaster?: string
    newMaster: string | null
    latest: string[]
    oldest: string[]
    candidates: Candidate[]
    dataLoss: DataLoss
    notes: string[]
    /** What the cluster file leaves undone after this plan (a missing fencing or IP hook); absent when nothing is. */
    warnings?: string[]
    /** The operator declared the master dead against the replicas' view (mha plan --force-dead), and why. */
    forcedDead?: string
    /**
     * What the operator asked to do by hand (mha plan --skip-change-master, --skip-disable-read-only: MHA's options):
     * the survivors recovered but not re-pointed, the new master left read_only; todo says it in words.
     */
    leftToOperator?: {repoint: string[]; disableReadOnly: boolean; todo: string[]}
  }
  steps: Step[]
  /** Run when a step fails before `ifFailedBefore` has run (a switchover undone before the promotion). */
  rollback?: {ifFailedBefore: string; steps: Step[]}
}
