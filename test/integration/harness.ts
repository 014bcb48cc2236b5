import {execFile, execFileSync, spawn, type ChildProcess} from 'node:child_process'
import {mkdirSync, mkdtempSync, rmSync} from 'node:fs'
import {createServer} from 'node:net'
import {tmpdir} from 'node:os'
import {dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {expect} from 'vitest'
import {ServerConnection, withConnection} from '../../src/inspect/mysql.js'
import {readPlan} from '../../src/plan/plan-file.js'
import type {Plan} from '../../src/plan/types.js'
import type {HaproxyRuntime} from '../../src/routing/haproxy.js'
import {WriteLoad} from '../../src/sandbox/load.js'
import {startDetached, waitFor} from '../../src/sandbox/processes.js'
import {adminEndpoint, hostNamed, sandboxDown, sandboxUp, startHost, type SandboxState} from '../../src/sandbox/sandbox.js'

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

/** After a test file: its watch killed, its sandbox down, the sandbox's temp folder and `folders` removed. */
export async function leaveNothing(watch: ChildProcess | undefined, sandbox: TestSandbox | undefined, folders: string[]): Promise<void> {
  if (watch && watch.exitCode === null) watch.kill('SIGKILL')
  // startSandbox's temp folder holds the sandbox and its clusters/ folder.
  const work = sandbox ? dirname(dirname(sandbox.configFile)) : undefined
  await sandbox?.down()
  for (const folder of [...(work?.startsWith(join(tmpdir(), 'mha-it-')) ? [work] : []), ...folders]) rmSync(folder, {recursive: true, force: true})
}

export interface RunResult {
  code: number
  stdout: string
  stderr: string
}

/** Run the built CLI (npm test builds first) as a user would. */
export function runMha(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return new Promise((done) => {
    execFile(process.execPath, [join(root, 'bin/run.js'), ...args], {cwd: root, env: {...process.env, NODE_ENV: 'production', ...env}, timeout: 120_000}, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0
      done({code, stdout, stderr})
    })
  })
}

export interface TestSandbox {
  state: SandboxState
  configFile: string
  sql<T>(host: string, fn: (conn: ServerConnection) => Promise<T>): Promise<T>
  down(): Promise<void>
}

/** A real sandbox on its own addresses (127.0.0.firstOctet...), so test files never share servers. */
export async function startSandbox(name: string, firstOctet: number, options: {replicas?: number; gtid?: boolean; semisync?: boolean; haproxyAddress?: string} = {}): Promise<TestSandbox> {
  const work = mkdtempSync(join(tmpdir(), `mha-it-${name}-`))
  // A new cluster: what an earlier run left in the default plans folder (a failover record, servers out of
  // service) is not about this one, and a plan file outside a <cluster> folder records there.
  rmSync(join(root, 'plans', name), {recursive: true, force: true})
  const state = await sandboxUp({
    cluster: name,
    replicas: options.replicas ?? 2,
    gtid: options.gtid ?? false,
    semisync: options.semisync ?? false,
    dir: join(work, 'sandbox'),
    configDir: join(work, 'clusters'),
    firstOctet,
    haproxyAddress: options.haproxyAddress,
  })
  return {
    state,
    configFile: state.configFile,
    sql: (host, fn) => withConnection(adminEndpoint(state, hostNamed(state, host)), 5000, fn),
    down: async () => {
      await sandboxDown(state.dir)
      rmSync(work, {recursive: true, force: true})
      rmSync(join(root, 'plans', name), {recursive: true, force: true})
    },
  }
}

/** `mha plan` of a failover into plansDir/NAME.json, which must have changes; returns the file and the plan. */
export async function planFailover(s: TestSandbox, plansDir: string, name: string): Promise<{file: string; plan: Plan}> {
  const file = join(plansDir, `${name}.json`)
  const result = await runMha(['plan', '--config', s.configFile, '-o', file])
  expect(result.code, result.stderr + result.stdout).toBe(2)
  return {file, plan: readPlan(file)}
}

/** `mha plan` then `mha apply` of that plan; returns the plan file. */
export async function planAndApply(s: TestSandbox, plansDir: string, kind: string, extra: string[] = []): Promise<string> {
  mkdirSync(join(plansDir, s.state.cluster), {recursive: true})
  const file = join(plansDir, s.state.cluster, `${Date.now()}-${kind}.json`)
  const plan = await runMha(['plan', '--config', s.configFile, '--plans-dir', plansDir, '-o', file, ...extra])
  expect(plan.code, plan.stderr + plan.stdout).toBe(2)
  const apply = await runMha(['apply', file, '--config', s.configFile])
  expect(apply.code, apply.stderr + apply.stdout).toBe(0)
  return file
}

export const survivors = (s: TestSandbox) => s.state.hosts.slice(1).map((h) => h.name)

/**
 * Every survivor replicates with `threads` parallel workers in `mode`; `perDomain` bounds the workers one
 * GTID domain may take (MariaDB slave_domain_parallel_threads), so a held domain leaves the others theirs.
 */
export async function replicateInParallel(s: TestSandbox, threads: number, mode: 'optimistic' | 'conservative' | 'aggressive', perDomain?: number): Promise<void> {
  for (const host of survivors(s))
    await s.sql(host, async (c) => {
      await c.execute('STOP SLAVE SQL_THREAD')
      await c.execute(`SET GLOBAL slave_parallel_threads = ${threads}`)
      if (perDomain !== undefined) await c.execute(`SET GLOBAL slave_domain_parallel_threads = ${perDomain}`)
      await c.execute(`SET GLOBAL slave_parallel_mode = '${mode}'`)
      await c.execute('START SLAVE SQL_THREAD')
    })
}

export async function killMasterAndWait(s: TestSandbox): Promise<void> {
  process.kill(s.state.hosts[0]!.mariadbdPid!, 'SIGKILL')
  await waitFor('the replicas to lose db1', 20_000, async () => {
    const rows = await Promise.all(survivors(s).map((h) => s.sql(h, (c) => c.queryOne('SHOW SLAVE STATUS'))))
    return rows.every((r) => r!.Slave_IO_Running !== 'Yes')
  })
}

/** Every acknowledged write is on the new master, every survivor has the same data, and a new write reaches them all. */
export async function expectConsistent(s: TestSandbox, newMaster: string, acked: number[]): Promise<void> {
  const ids = await s.sql(newMaster, async (c) => (await c.query('SELECT id FROM mhatest.acked')).map((r) => Number(r.id)))
  const present = new Set(ids)
  expect(acked.filter((id) => !present.has(id))).toEqual([])
  await s.sql(newMaster, (c) => c.execute('INSERT INTO mhatest.acked (id) VALUES (999999)'))
  for (const host of survivors(s))
    await waitFor(`${host} to receive the new write`, 20_000, async () => Number((await s.sql(host, (c) => c.queryOne('SELECT COUNT(*) AS n FROM mhatest.acked WHERE id = 999999')))!.n) === 1)
  for (const table of ['acked', 'acked_log']) {
    const sums = await Promise.all(survivors(s).map((h) => s.sql(h, async (c) => String((await c.queryOne(`CHECKSUM TABLE mhatest.${table}`))!.Checksum))))
    expect(sums.every((sum) => sum === sums[0]), `CHECKSUM TABLE ${table}: ${sums.join(', ')}`).toBe(true)
  }
  // None applied twice: the log table has no unique key to refuse a second copy.
  for (const host of survivors(s)) {
    const twice = await s.sql(host, (c) => c.query('SELECT id, COUNT(*) AS n FROM mhatest.acked_log GROUP BY id HAVING COUNT(*) > 1'))
    expect(twice, `${host}: ids present twice`).toEqual([])
  }
  const logged = new Set(await s.sql(newMaster, async (c) => (await c.query('SELECT id FROM mhatest.acked_log')).map((r) => Number(r.id))))
  expect(acked.filter((id) => !logged.has(id))).toEqual([])
  for (const host of survivors(s).filter((h) => h !== newMaster)) {
    const status = (await s.sql(host, (c) => c.queryOne('SHOW SLAVE STATUS')))!
    expect([status.Master_Host, status.Slave_IO_Running, status.Slave_SQL_Running]).toEqual([s.state.hosts.find((h) => h.name === newMaster)!.ip, 'Yes', 'Yes'])
  }
}


/**
 * Every server's read_only, replication source and threads, binlog coordinates and GTID state (and `count`, a
 * query of one row with a column n, when given): what "no server changed" is compared on, before and after.
 */
export async function serverStates(s: TestSandbox, count?: string): Promise<string> {
  const rows = await Promise.all(
    s.state.hosts.map(async (h) => {
      try {
        return await s.sql(h.name, async (c) => {
          const replica = await c.queryOne('SHOW SLAVE STATUS')
          const master = await c.queryOne('SHOW MASTER STATUS')
          const vars = await c.queryOne('SELECT @@global.read_only+0 AS ro, @@global.gtid_binlog_pos AS pos, @@global.gtid_binlog_state AS state')
          const rows = count ? `rows=${String((await c.queryOne(count))?.n)}` : ''
          return JSON.stringify([h.name, `read_only=${String(vars?.ro)}`, `source=${replica ? String(replica.Master_Host) : 'none'}`, replica?.Slave_IO_Running, replica?.Slave_SQL_Running, `${String(master?.File)}:${String(master?.Position)}`, `gtid=${String(vars?.pos)}`, `state=${String(vars?.state)}`, rows])
        })
      } catch (error) {
        return `${h.name} down (${error instanceof Error ? error.message : String(error)})`
      }
    }),
  )
  return rows.join('\n')
}

/** One line of mha watch --log-format json. */
export interface WatchLogLine {
  at: string
  cluster: string
  event: string
  message: string
  plan?: string
  report?: string
  server?: string
}

/** One mha watch process of a test, as one manager host: its name, its plans folder, its log lines so far. */
export interface WatchManager {
  id: string
  plansDir: string
  child: ChildProcess
  lines: WatchLogLine[]
}

/** mha watch (the built CLI) as a child process logging JSON; its lines are collected as they come. */
export function spawnWatch(args: string[]): {child: ChildProcess; lines: WatchLogLine[]; exited: Promise<number | null>} {
  const lines: WatchLogLine[] = []
  const child = spawn(process.execPath, [join(root, 'bin/run.js'), 'watch', '--log-format', 'json', ...args], {cwd: root, env: {...process.env, NODE_ENV: 'production'}})
  let buffer = ''
  child.stdout.on('data', (chunk: Buffer) => {
    buffer += chunk.toString()
    for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
      lines.push(JSON.parse(buffer.slice(0, i)) as WatchLogLine)
      buffer = buffer.slice(i + 1)
    }
  })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  return {child, lines, exited}
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as {port: number}).port
      s.close(() => resolve(port))
    })
  })
}

/** Every acknowledged write everywhere, the same data on every server, and the expected roles. */
export async function expectRoles(s: TestSandbox, master: string, acked: number[]): Promise<void> {
  const ip = (name: string) => s.state.hosts.find((h) => h.name === name)!.ip
  expect(Number((await s.sql(master, (c) => c.queryOne('SELECT @@global.read_only+0 AS ro')))!.ro)).toBe(0)
  for (const name of s.state.hosts.map((h) => h.name).filter((n) => n !== master)) {
    await waitFor(`${name} to replicate from ${master}`, 20_000, async () => {
      const r = await s.sql(name, (c) => c.queryOne('SHOW SLAVE STATUS'))
      return r?.Master_Host === ip(master) && r.Slave_IO_Running === 'Yes' && r.Slave_SQL_Running === 'Yes'
    })
  }
  const marker = 900_000 + Math.floor(Math.random() * 1000)
  await s.sql(master, (c) => c.execute(`INSERT INTO mhatest.acked (id) VALUES (${marker})`))
  for (const name of s.state.hosts.map((h) => h.name))
    await waitFor(`${name} to have the marker row`, 20_000, async () => Number((await s.sql(name, (c) => c.queryOne(`SELECT COUNT(*) AS n FROM mhatest.acked WHERE id = ${marker}`)))!.n) === 1)
  const sums = await Promise.all(s.state.hosts.map((h) => h.name).map((n) => s.sql(n, async (c) => String((await c.queryOne('CHECKSUM TABLE mhatest.acked'))!.Checksum))))
  expect(new Set(sums).size).toBe(1)
  const present = new Set(await s.sql(master, async (c) => (await c.query('SELECT id FROM mhatest.acked')).map((r) => Number(r.id))))
  expect(acked.filter((id) => !present.has(id))).toEqual([])
}

/**
 * mhatest.t with the row (1, 1), made on db1 and waited for on db2: a test then holds that row there to keep db2
 * behind. Until replication has created the table on db2, its query fails: not yet, not an error.
 */
export async function tableOfOneRow(s: TestSandbox): Promise<void> {
  await s.sql('db1', async (c) => {
    await c.execute('CREATE TABLE mhatest.t (id INT PRIMARY KEY, v INT)')
    await c.execute('INSERT INTO mhatest.t VALUES (1, 1)')
  })
  await waitFor('db2 to have the row', 10_000, async () => Number((await s.sql('db2', (c) => c.queryOne('SELECT COUNT(*) AS n FROM mhatest.t')).catch(() => undefined))?.n) === 1)
}

/**
 * A replica's SQL thread held on a row lock (a backup or a long report would do the same): after the master's
 * death the failover's wait for its relay log cannot end until the lock goes, so a manager can be killed or
 * frozen in the middle of its apply, at a step known in advance.
 */
export async function holdReplica(s: TestSandbox, replica: string): Promise<ServerConnection> {
  await s.sql('db1', async (c) => {
    await c.execute('CREATE TABLE IF NOT EXISTS mhatest.hold (id INT PRIMARY KEY, v INT) ENGINE=InnoDB')
    await c.execute('REPLACE INTO mhatest.hold VALUES (1, 0)')
  })
  // The table itself may not have reached the replica yet.
  await waitFor(`${replica} to have the hold row`, 20_000, async () => Number((await s.sql(replica, (c) => c.queryOne("SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'mhatest' AND TABLE_NAME = 'hold'")))!.n) === 1 && Number((await s.sql(replica, (c) => c.queryOne('SELECT COUNT(*) AS n FROM mhatest.hold')))!.n) === 1)
  // A replication thread on the held row: INNODB_TRX shows it waiting, or (seen in CI, twice in eight runs of one
  // test) only the thread itself does, in Update_rows_log_event::find_row() on the held UPDATE, while INNODB_TRX
  // has no LOCK WAIT.
  const lockWaits = async () =>
    Number((await s.sql(replica, (c) => c.queryOne("SELECT COUNT(*) AS n FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'")))!.n) +
    Number((await s.sql(replica, (c) => c.queryOne("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE USER = 'system user' AND INFO LIKE 'UPDATE mhatest.hold SET v = v + 1%'")))!.n)
  // If the thread never comes to wait, the hold is taken again, and what the replica was doing is said.
  for (let attempt = 1; ; attempt++) {
    const holder = await ServerConnection.open(adminEndpoint(s.state, hostNamed(s.state, replica)), 5000)
    await holder.execute('SET SESSION innodb_lock_wait_timeout = 300')
    await holder.execute('BEGIN')
    await holder.query('SELECT * FROM mhatest.hold WHERE id = 1 FOR UPDATE')
    await s.sql('db1', (c) => c.execute('UPDATE mhatest.hold SET v = v + 1 WHERE id = 1'))
    try {
      await waitFor(`${replica}'s SQL thread to wait for the row lock`, 10_000, async () => (await lockWaits()) > 0)
      return holder
    } catch (error) {
      const status = await s.sql(replica, (c) => c.queryOne('SHOW SLAVE STATUS'))
      const threads = await s.sql(replica, (c) => c.query("SELECT ID, USER, COMMAND, STATE, INFO FROM information_schema.PROCESSLIST WHERE COMMAND <> 'Sleep'"))
      await holder.execute('ROLLBACK').catch(() => undefined)
      await holder.close()
      if (attempt === 3) throw new Error(`${error instanceof Error ? error.message : String(error)}; ${replica}: ${JSON.stringify({io: status?.Slave_IO_Running, sql: status?.Slave_SQL_Running, state: status?.Slave_SQL_Running_State, error: status?.Last_SQL_Error, threads})}`)
    }
  }
}

/** A new sandbox (startSandbox) with a write load on db1 already running. */
export async function sandboxUnderLoad(name: string, firstOctet: number): Promise<{s: TestSandbox; load: WriteLoad}> {
  const s = await startSandbox(name, firstOctet)
  await WriteLoad.prepare(s.state, 'db1')
  const load = new WriteLoad(s.state)
  load.start()
  return {s, load}
}

/**
 * A new cluster under write load whose master was killed while db3's SQL thread is held (holdReplica), before
 * any failover: whoever fails it over waits for db3 until the holder lets go.
 */
export async function deadMasterWithHeldReplica(name: string, firstOctet: number): Promise<{s: TestSandbox; load: WriteLoad; holder: ServerConnection}> {
  const {s, load} = await sandboxUnderLoad(name, firstOctet)
  const holder = await holdReplica(s, 'db3')
  await killMasterAndWait(s)
  return {s, load, holder}
}

/**
 * Starts `host` again from its my.cnf (writable, replicating from nobody) and waits for it to answer and then
 * to be read only; returns the seconds from its first answer to the first look that found it read only.
 */
export async function restartAndTimeFence(s: TestSandbox, host: string, timeoutMs: number): Promise<number> {
  let answeredAt: number | undefined
  let readOnlyAt: number | undefined
  const started = startHost(s.state, host)
  await waitFor(
    `${host} to answer and then become read only`,
    timeoutMs,
    async () => {
      try {
        const ro = Number((await s.sql(host, (c) => c.queryOne('SELECT @@global.read_only+0 AS ro')))!.ro)
        answeredAt ??= Date.now()
        if (ro === 1) readOnlyAt = Date.now()
        return ro === 1
      } catch {
        return false
      }
    },
    20,
  )
  await started
  return (readOnlyAt! - answeredAt!) / 1000
}

/** One etcd member of its own on `address` (client 2379, peer 2380), data in `dataDir`; its pid once it answers. */
export async function startOneEtcd(address: string, dataDir: string, name: string): Promise<number> {
  const endpoint = `http://${address}:2379`
  const pid = startDetached(
    'etcd',
    ['--name', name, `--data-dir=${dataDir}`, '--listen-client-urls', endpoint, '--advertise-client-urls', endpoint, '--listen-peer-urls', `http://${address}:2380`, '--initial-advertise-peer-urls', `http://${address}:2380`, '--initial-cluster', `${name}=http://${address}:2380`],
    `${dataDir}.log`,
  )
  await waitFor(`etcd on ${address} to answer`, 30_000, () => {
    try {
      execFileSync('etcdctl', ['--endpoints', endpoint, '--command-timeout=2s', 'endpoint', 'health'], {env: {...process.env, ETCDCTL_API: '3'}, stdio: 'pipe'})
      return true
    } catch {
      return false
    }
  }, 200)
  return pid
}

/** Polls a proxy's writer backend until stopped: the most servers ever enabled at once, the reads, and those unanswered (a stopped proxy). */
export function watchWriters(api: HaproxyRuntime, backend: string): {stop: () => Promise<{most: number; reads: number; unanswered: number}>} {
  let running = true
  let most = 0
  let reads = 0
  let unanswered = 0
  const loop = (async () => {
    while (running) {
      try {
        const servers = await api.showServersState(backend)
        most = Math.max(most, servers.filter((s) => s.enabled).length)
        reads++
      } catch {
        // A stopped proxy: counted, and asked again a moment later.
        unanswered++
        await new Promise((r) => setTimeout(r, 50))
      }
    }
  })()
  return {
    stop: async () => {
      running = false
      await loop
      return {most, reads, unanswered}
    },
  }
}
