/**
 * Binlog reader throughput: our scanner (CRC32 verified, and header-only) beside mariadb-binlog on the same file.
 *
 *   npx tsx bench/binlog-read.ts [file]          read an existing binlog or relay log
 *   npx tsx bench/binlog-read.ts --size-mb 1024  (default) make a relay log of at least that size first
 *
 * Without a file, it starts a throwaway MariaDB master (127.0.0.96:3396) and replica (127.0.0.95:3395) under
 * /tmp, bulk-inserts big rows into a BLACKHOLE table on the master (binlogged, not stored) while the replica's
 * IO thread alone copies them into its relay log, then reads the largest relay log file. Servers are stopped by
 * PID and every file is removed at the end.
 */
import {execFileSync, spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {createReadStream, existsSync, mkdtempSync, readdirSync, rmSync, statSync} from 'node:fs'
import {join} from 'node:path'
import {fileSource, scanBinlog} from '../src/binlog/index.js'

const MiB = 1024 * 1024
const servers: ChildProcess[] = []
let workDir: string | null = null

function mariadb(socket: string, sql: string): string {
  const args = ['--no-defaults', '-uroot', `--socket=${socket}`, '-N', '-B', '-e', sql]
  return execFileSync('mariadb', args, {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']}).trim()
}

async function startServer(dir: string, name: string, ip: string, port: number, serverId: number): Promise<string> {
  const datadir = join(dir, name)
  const socket = join(dir, `${name}.sock`)
  execFileSync('mariadb-install-db', ['--no-defaults', '--user=root', `--datadir=${datadir}`, '--skip-test-db', '--auth-root-authentication-method=socket'], {
    stdio: 'ignore',
  })
  const server = spawn(
    'mariadbd',
    [
      '--no-defaults',
      '--user=root',
      `--datadir=${datadir}`,
      `--socket=${socket}`,
      `--pid-file=${join(dir, `${name}.pid`)}`,
      `--log-error=${join(dir, `${name}.err`)}`,
      `--bind-address=${ip}`,
      `--port=${port}`,
      `--server-id=${serverId}`,
      `--log-bin=${join(datadir, 'mysql-bin')}`,
      `--relay-log=${join(datadir, 'relay-bin')}`,
      '--max-binlog-size=1G',
      '--max-relay-log-size=1G',
      '--relay-log-purge=0',
      '--binlog-format=ROW',
      '--binlog-checksum=CRC32',
      '--plugin-load-add=ha_blackhole',
      '--innodb-buffer-pool-size=64M',
      '--skip-name-resolve',
      '--skip-slave-start',
    ],
    {stdio: 'ignore'},
  )
  servers.push(server)
  for (let i = 0; i < 150; i++) {
    if (server.exitCode !== null) break
    try {
      mariadb(socket, 'SELECT 1')
      return socket
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }
  throw new Error(`${name} did not start; see ${join(dir, `${name}.err`)}`)
}

async function stopServers(): Promise<void> {
  for (const server of servers) {
    if (server.exitCode === null && server.pid !== undefined) process.kill(server.pid, 'SIGTERM')
  }
  for (const server of servers) {
    if (server.exitCode === null) await new Promise((resolve) => server.once('exit', resolve))
  }
  servers.length = 0
}

async function makeRelayLog(sizeMiB: number): Promise<string> {
  workDir = mkdtempSync('/tmp/binlog-bench-')
  const master = await startServer(workDir, 'm', '127.0.0.96', 3396, 1)
  const replica = await startServer(workDir, 'r', '127.0.0.95', 3395, 2)
  mariadb(master, "CREATE USER repl@'127.0.0.%' IDENTIFIED BY 'repl'; GRANT REPLICATION SLAVE ON *.* TO repl@'127.0.0.%'")
  const [file, pos] = mariadb(master, 'SHOW MASTER STATUS').split('\t')
  mariadb(
    replica,
    `CHANGE MASTER TO MASTER_HOST='127.0.0.96', MASTER_PORT=3396, MASTER_USER='repl', MASTER_PASSWORD='repl', ` +
      `MASTER_LOG_FILE='${file}', MASTER_LOG_POS=${pos}, MASTER_USE_GTID=no; START SLAVE IO_THREAD`,
  )
  mariadb(master, 'CREATE DATABASE b; CREATE TABLE b.t (id INT, payload LONGTEXT) ENGINE=BLACKHOLE')
  const relayDir = join(workDir, 'r')
  const largestRelay = (): {path: string; size: number} => {
    const files = readdirSync(relayDir)
      .filter((f) => /^relay-bin\.\d+$/.test(f))
      .map((f) => ({path: join(relayDir, f), size: statSync(join(relayDir, f)).size}))
    return files.sort((a, b) => b.size - a.size)[0] ?? {path: '', size: 0}
  }
  // 4000 rows of ~1.6 KB each per statement: row events of ~8 KB (binlog_row_event_max_size), some small events between.
  const insert =
    'SET SESSION max_recursive_iterations = 100000; INSERT INTO b.t (id, payload) WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 4000) ' +
    'SELECT n, REPEAT(MD5(n + RAND()), 50) FROM s'
  const started = Date.now()
  let statements = 0
  while (largestRelay().size < sizeMiB * MiB) {
    mariadb(master, insert)
    statements++
    if (statements % 10 === 0) {
      process.stdout.write(`\r  relay log ${(largestRelay().size / MiB).toFixed(0)} MiB of ${sizeMiB} MiB`)
    }
  }
  process.stdout.write(`\r  relay log ${(largestRelay().size / MiB).toFixed(0)} MiB after ${statements} statements, ${((Date.now() - started) / 1000).toFixed(0)} s\n`)
  mariadb(replica, 'STOP SLAVE')
  await stopServers()
  return largestRelay().path
}

async function timed(run: () => Promise<void> | void): Promise<number> {
  const start = process.hrtime.bigint()
  await run()
  return Number(process.hrtime.bigint() - start) / 1e9
}

async function warm(path: string): Promise<void> {
  for await (const chunk of createReadStream(path, {highWaterMark: 4 * MiB})) void chunk
}

async function main(): Promise<void> {
  const args = process.argv.slice(2)
  const sizeFlag = args.indexOf('--size-mb')
  const sizeMiB = sizeFlag === -1 ? 1024 : Number(args[sizeFlag + 1])
  const given = args.find((a, i) => !a.startsWith('--') && args[i - 1] !== '--size-mb')
  const path = given ?? (await makeRelayLog(sizeMiB))
  if (!existsSync(path)) throw new Error(`${path}: no such file`)
  const size = statSync(path).size
  const mb = size / 1e6
  console.log(`file: ${path}${given ? '' : ' (a relay log written by a MariaDB replica)'}, ${(size / MiB).toFixed(0)} MiB`)
  await warm(path)

  let events = 0
  const rows: Array<[string, number]> = []
  const full = await timed(async () => {
    await scanBinlog(fileSource(path), () => void events++, {verifyChecksums: true})
  })
  rows.push(['mha scanner, CRC32 verified', full])
  const headers = await timed(async () => {
    await scanBinlog(fileSource(path), () => undefined, {verifyChecksums: false})
  })
  rows.push(['mha scanner, headers only', headers])
  for (const [label, extra] of [
    ['mariadb-binlog > /dev/null', []],
    ['mariadb-binlog --verify-binlog-checksum > /dev/null', ['--verify-binlog-checksum']],
  ] as const) {
    const seconds = await timed(() => {
      const r = spawnSync('mariadb-binlog', [...extra, path], {stdio: ['ignore', 'ignore', 'pipe']})
      if (r.status !== 0) throw new Error(`mariadb-binlog failed: ${r.stderr.toString().trim()}`)
    })
    rows.push([label, seconds])
  }
  console.log(`events: ${events}, average ${(size / events).toFixed(0)} bytes`)
  for (const [label, seconds] of rows) {
    console.log(`${label.padEnd(52)} ${seconds.toFixed(2).padStart(7)} s ${(mb / seconds).toFixed(0).padStart(7)} MB/s`)
  }
}

async function cleanup(): Promise<void> {
  await stopServers()
  if (workDir) rmSync(workDir, {recursive: true, force: true})
  workDir = null
}

process.on('SIGINT', () => {
  void cleanup().then(() => process.exit(130))
})

try {
  await main()
} finally {
  await cleanup()
}
