import {execFileSync} from 'node:child_process'
import {writeFileSync} from 'node:fs'
import {dirname, resolve} from 'node:path'
import {applyPlan} from '../apply/executor.js'
import {lockCluster} from '../apply/lock.js'
import {topologyOf} from '../analysis/topology.js'
import type {ClusterConfig, ServerConfig} from '../config/types.js'
import {dialectFor, parseServerVersion} from '../dialect/index.js'
import {endpointOf, inspectCluster, sshTargetOf} from '../inspect/inspect.js'
import {ServerConnection, SqlError} from '../inspect/mysql.js'
import {defaultPlanPath, toolVersion, writePlan} from '../plan/plan-file.js'
import {planFor} from '../plan/planner.js'
import {SshSession} from '../remote/ssh.js'
import {oneLine} from '../util/errors.js'
import {judge, type Observation, type Verdict} from './judge.js'
import type {Logger} from './log.js'
import {failoverBlocked, readWatchState, writeWatchState} from './state.js'

/** What the loop last saw, for `--listen` (metrics and /status): read-only outside this class. */
export interface WatchHealth {
  /** Epoch ms of the last ping and whether it succeeded; null before the first. */
  lastPingAt: number | null
  lastPingOk: boolean | null
  lastSuccessfulPingAt: number | null
  /** Why the cluster cannot be monitored now (no master found, discovery failed); null when it can. */
  notMonitored: string | null
  /** Failovers this process ran to the end of apply, oldest first. */
  failovers: {at: string; status: string; durationMs: number}[]
}

export interface WatchOptions {
  plansDir: string
  git: boolean
  log: Logger
}

/** One cluster's loop: ping the master, ask the replicas when it fails, fail over through plan and apply. */
export class ClusterWatcher {
  readonly cluster: ClusterConfig
  readonly options: WatchOptions
  master: ServerConfig | undefined
  verdict: Verdict = {state: 'healthy'}
  failures = 0
  readonly health: WatchHealth = {lastPingAt: null, lastPingOk: null, lastSuccessfulPingAt: null, notMonitored: null, failovers: []}
  #conn: ServerConnection | undefined
  #stopping = false
  #timer: NodeJS.Timeout | undefined
  #busy: Promise<void> = Promise.resolve()
  #lastReport = ''

  constructor(cluster: ClusterConfig, options: WatchOptions) {
    this.cluster = cluster
    this.options = options
  }

  start(): void {
    this.#schedule(0)
  }

  /** Stops after the current tick; a failover in progress finishes its step journal first. */
  async stop(): Promise<void> {
    this.#stopping = true
    clearTimeout(this.#timer)
    await this.#busy
    await this.#conn?.close()
  }

  #schedule(ms: number): void {
    if (this.#stopping) return
    this.#timer = setTimeout(() => {
      // While the master fails, look again sooner: detection is fast, and still needs several failures.
      this.#busy = this.tick().finally(() => this.#schedule(this.failures > 0 ? Math.min(this.cluster.monitor.pingIntervalMs, 250) : this.cluster.monitor.pingIntervalMs))
    }, ms)
  }

  #say(event: string, message: string, fields?: Record<string, unknown>): void {
    this.options.log(this.cluster.name, event, message, fields)
  }

  async tick(): Promise<void> {
    try {
      if (!this.master) {
        await this.#discover()
        if (!this.master) return
      }
      const observation: Observation = {master: await this.#ping(this.master), replicas: [], sshReachable: null}
      this.health.lastPingAt = Date.now()
      this.health.lastPingOk = observation.master.ok
      if (observation.master.ok) this.health.lastSuccessfulPingAt = this.health.lastPingAt
      this.failures = observation.master.ok ? 0 : observation.master.kind === 'auth' || observation.master.kind === 'too_many_connections' ? 0 : this.failures + 1
      if (!observation.master.ok && this.failures >= this.cluster.monitor.failuresBeforeDead) {
        observation.replicas = await this.#askReplicas(this.master)
        observation.sshReachable = await this.#sshReachable(this.master)
      }
      const verdict = judge(observation, this.failures, this.cluster.monitor.failuresBeforeDead)
      this.#report(verdict)
      this.verdict = verdict
      if (verdict.state === 'dead') await this.#failover(verdict.reason)
    } catch (error) {
      if (!this.master) this.health.notMonitored = `cannot find the master: ${oneLine(error)}`
      this.#say('error', oneLine(error))
    }
  }

  #report(verdict: Verdict): void {
    const key = verdict.state === 'suspect' ? `suspect${verdict.failures}` : verdict.state
    if (key === this.#lastReport || (key === 'dead' && this.#lastReport === 'blocked')) return
    this.#lastReport = key
    if (verdict.state === 'healthy') this.#say('healthy', `${this.master?.name ?? '?'} answers`)
    else this.#say(verdict.state, verdict.reason)
  }

  async #discover(): Promise<void> {
    const snapshot = await inspectCluster(this.cluster, {relayLookups: false, ssh: false})
    const master = topologyOf(this.cluster, snapshot).master
    if (master?.name !== this.master?.name) this.#say('master', master ? `monitoring ${master.name} (${master.ip}:${master.port})` : 'no master found; retrying')
    this.master = master
    this.health.notMonitored = master ? null : 'no master found among the servers of the cluster file'
  }

  async #ping(master: ServerConfig): Promise<Observation['master']> {
    const timeout = this.cluster.monitor.connectTimeoutMs
    try {
      if (this.cluster.monitor.pingType === 'connect' || !this.#conn) {
        await this.#conn?.close()
        this.#conn = await ServerConnection.open(endpointOf(this.cluster, master), timeout)
      }
      if (this.cluster.monitor.pingType === 'insert') {
        await this.#conn.execute('CREATE DATABASE IF NOT EXISTS mha_heartbeat', timeout)
        await this.#conn.execute('CREATE TABLE IF NOT EXISTS mha_heartbeat.heartbeat (id TINYINT PRIMARY KEY, at TIMESTAMP(6) NOT NULL)', timeout)
        await this.#conn.execute('INSERT INTO mha_heartbeat.heartbeat VALUES (1, NOW(6)) ON DUPLICATE KEY UPDATE at = NOW(6)', timeout)
      } else await this.#conn.query('SELECT 1', [], timeout)
      if (this.cluster.monitor.pingType === 'connect') {
        await this.#conn.close()
        this.#conn = undefined
      }
      return {ok: true}
    } catch (error) {
      await this.#conn?.close()
      this.#conn = undefined
      const e = error instanceof SqlError ? error : new SqlError('sql', 'UNKNOWN', oneLine(error))
      return {ok: false, kind: e.kind, message: e.message}
    }
  }

  async #askReplicas(master: ServerConfig): Promise<Observation['replicas']> {
    const others = this.cluster.servers.filter((s) => s !== master)
    return await Promise.all(
      others.map(async (server) => {
        try {
          const conn = await ServerConnection.open(endpointOf(this.cluster, server), this.cluster.monitor.connectTimeoutMs)
          try {
            const row = await conn.queryOne('SELECT @@version AS v, @@version_comment AS c')
            const dialect = dialectFor(parseServerVersion(String(row?.v), typeof row?.c === 'string' ? row.c : ''))
            const status = await conn.queryOne(dialect.showReplicaStatus)
            const parsed = status ? dialect.parseReplicaStatus(status) : null
            const fromMaster = parsed && (parsed.sourceHost === master.hostname || parsed.sourceHost === master.ip) && parsed.sourcePort === master.port
            return {name: server.name, reachable: true, ioThread: fromMaster ? parsed.ioThread : null, lastIoError: fromMaster ? parsed.lastIoError : ''}
          } finally {
            await conn.close()
          }
        } catch {
          return {name: server.name, reachable: false, ioThread: null, lastIoError: ''}
        }
      }),
    ).then((rows) => rows.filter((r) => !r.reachable || r.ioThread !== null))
  }

  async #sshReachable(master: ServerConfig): Promise<boolean> {
    try {
      const session = await SshSession.open(sshTargetOf(this.cluster, master))
      session.close()
      return true
    } catch {
      return false
    }
  }

  /** No third code path: the same plan and apply as the commands, archived beside each other. */
  async #failover(reason: string): Promise<void> {
    const {plansDir, git} = this.options
    const state = readWatchState(plansDir, this.cluster.name)
    const blocked = failoverBlocked(state, this.cluster.monitor.lastFailoverMinute)
    if (blocked) {
      // Said once per outage, not at every ping.
      if (this.#lastReport !== 'blocked') this.#say('blocked', `${this.master?.name ?? 'the master'} is dead but no automatic failover: ${blocked.replace('<name>', this.cluster.name)}`)
      this.#lastReport = 'blocked'
      return
    }
    let unlock: () => void
    try {
      unlock = lockCluster(this.cluster.name, `mha watch (pid ${process.pid})`)
    } catch (error) {
      this.#say('locked', oneLine(error))
      return
    }
    const started = Date.now()
    try {
      this.#say('failover', `starting: ${reason}`)
      const snapshot = await inspectCluster(this.cluster)
      const plan = planFor(this.cluster, snapshot, {tool: toolVersion(), createdAt: new Date().toISOString(), configFile: this.cluster.file})
      if (plan.kind === 'noop') {
        this.#say('failover', 'the master answers again; nothing to do')
        return
      }
      const planFile = defaultPlanPath(plan, plansDir)
      writePlan(plan, planFile)
      this.#say('plan', `${plan.decision.summary}; data loss: ${plan.decision.dataLoss.statement}`, {plan: planFile})
      const report = await applyPlan({
        planFile,
        plan,
        cluster: this.cluster,
        listener: (event) => {
          if (event.kind === 'end' || event.kind === 'skip' || event.kind === 'fail') this.#say(`step ${event.kind}`, `${event.step.id}${event.kind === 'skip' ? `: ${event.reason}` : event.kind === 'fail' ? `: ${event.message}` : ''}`)
        },
      })
      const reportFile = planFile.replace(/\.json$/, '.report.json')
      writeFileSync(reportFile, JSON.stringify(report, null, 2) + '\n')
      writeWatchState(plansDir, this.cluster.name, {
        lastFailover: {at: new Date().toISOString(), plan: planFile, report: reportFile, status: report.status, deadMaster: plan.decision.deadMaster, newMaster: plan.decision.newMaster},
        acknowledged: false,
      })
      this.health.failovers.push({at: new Date().toISOString(), status: report.status, durationMs: Date.now() - started})
      const outcome = report.status === 'applied' ? 'failover done' : report.status === 'partial' ? 'failover done, replicas left out' : 'failover failed'
      this.#say(outcome, report.message + (report.dataLoss ? `; data loss: ${report.dataLoss}` : '') + (report.nextAction ? `; next: ${report.nextAction}` : ''), {plan: planFile, report: reportFile})
      if (git) this.#commit(planFile, reportFile, `mha watch: ${plan.cluster} ${report.status}: ${plan.decision.summary}`)
      this.master = undefined
      this.failures = 0
    } finally {
      unlock()
    }
  }

  #commit(planFile: string, reportFile: string, message: string): void {
    // The repository is the one holding the plans folder, whatever watch's working directory is.
    const files = [resolve(planFile), resolve(reportFile)]
    const git = (args: string[]) => execFileSync('git', args, {cwd: dirname(files[0]!), stdio: 'pipe'}).toString().trim()
    try {
      let identity: string[] = []
      try {
        git(['config', 'user.email'])
      } catch {
        identity = ['-c', 'user.name=mha watch', '-c', 'user.email=mha-watch@localhost']
      }
      git(['add', '--', ...files])
      git([...identity, 'commit', '-q', '-m', message, '--', ...files])
      this.#say('git', `committed ${planFile} and its report`)
    } catch (error) {
      this.#say('git', `could not commit: ${oneLine(error)}`)
    }
  }
}
