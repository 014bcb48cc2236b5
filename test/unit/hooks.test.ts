import {missingHookWarnings} from '../../src/analysis/hooks.js'
import {chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {parse} from 'yaml'
import {checkCluster} from '../../src/analysis/check.js'
import {importMhaConfig} from '../../src/config/import-mha.js'
import {parseClusterConfig} from '../../src/config/load.js'
import {locateHookCommand, resolveHookCommand, splitHookCommand} from '../../src/hooks/command.js'
import {hookPasswords, passwordsFor, runHook} from '../../src/hooks/run.js'
import type {Snapshot} from '../../src/inspect/types.js'
import {renderPlan} from '../../src/cli/render-plan.js'
import {planDigest, validatePlan} from '../../src/plan/plan-file.js'
import {planFor} from '../../src/plan/planner.js'
import {planProblems} from '../../src/plan/validate.js'
import {Secret} from '../../src/util/secret.js'

const golden = join(import.meta.dirname, '../golden/mariadb-file-lagging')
const goldenYaml = readFileSync(join(golden, 'cluster.yaml'), 'utf8')
const goldenSnapshot = JSON.parse(readFileSync(join(golden, 'snapshot.json'), 'utf8')) as Snapshot
const header = {tool: 'mha test', createdAt: '2026-01-01T00:00:00.000Z', configFile: 'cluster.yaml'}
const withHooks = (hooks: string) => parseClusterConfig(`${goldenYaml}hooks:\n${hooks}`, '/etc/mha/clusters/app1.yaml', {})

function script(dir: string, name: string, body: string): string {
  const file = join(dir, name)
  writeFileSync(file, `#!/bin/sh\n${body}\n`)
  chmodSync(file, 0o755)
  return file
}

describe('hook commands: a path or a name looked up in PATH', () => {
  it('keeps a bare command name and its arguments for a PATH lookup; resolves only relative paths against the cluster file', () => {
    const c = withHooks(
      [
        '  secondary_check: masterha_secondary_check -s remote_host1 -s remote_host2',
        '  shutdown: scripts/fence.sh --vendor=ipmi',
        '  master_ip_failover: /usr/local/bin/mip --vip=10.0.0.100',
        "  report: ~/bin/report 'a b'",
        '  master_ip_online_change: ./online',
      ].join('\n'),
    )
    expect(c.hooks.secondaryCheck).toBe('masterha_secondary_check -s remote_host1 -s remote_host2')
    expect(c.hooks.shutdown).toBe('/etc/mha/clusters/scripts/fence.sh --vendor=ipmi')
    expect(c.hooks.masterIpFailover).toBe('/usr/local/bin/mip --vip=10.0.0.100')
    expect(c.hooks.report).toMatch(/^\/.+\/bin\/report 'a b'$/)
    expect(c.hooks.masterIpOnlineChange).toBe('/etc/mha/clusters/online')
    expect(c.hooks.passPasswords).toBe(false)
  })

  it('splits the command word as sh does, quoted or not', () => {
    expect(splitHookCommand('  masterha_secondary_check -s a')).toEqual({word: 'masterha_secondary_check', rest: ' -s a'})
    expect(splitHookCommand(`'/opt/my hooks/vip' --x`)).toEqual({word: '/opt/my hooks/vip', rest: ' --x'})
    expect(resolveHookCommand(`'my hooks/vip' --x`, '/etc/mha')).toBe(`'/etc/mha/my hooks/vip' --x`)
  })

  it('an MHA .cnf secondary_check_script with a bare command stays a PATH lookup once loaded', () => {
    const imported = importMhaConfig({
      appText: ['[server default]', 'user=mha', 'password=pw', 'secondary_check_script = masterha_secondary_check -s remote_host1 -s remote_host2', '[server1]', 'hostname=db1', '[server2]', 'hostname=db2'].join('\n'),
      appFile: '/etc/masterha/app1.cnf',
      clusterName: 'app1',
    })
    expect((parse(imported.yaml) as {hooks: Record<string, string>}).hooks.secondary_check).toBe('masterha_secondary_check -s remote_host1 -s remote_host2')
    const dir = mkdtempSync(join(tmpdir(), 'mha-hooks-'))
    const file = join(dir, 'app1.yaml')
    writeFileSync(file, imported.yaml)
    mkdirSync(join(dir, 'app1.secrets'))
    for (const s of imported.secrets) writeFileSync(join(dir, 'app1.secrets', s.field), s.value)
    const loaded = parseClusterConfig(imported.yaml, file, {})
    expect(loaded.hooks.secondaryCheck).toBe('masterha_secondary_check -s remote_host1 -s remote_host2')
  })

  it('finds a bare name in PATH, and says why a command cannot run', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mha-hooks-'))
    const found = script(dir, 'my_check', 'exit 0')
    writeFileSync(join(dir, 'not_executable'), '#!/bin/sh\n')
    expect(locateHookCommand('my_check -s host1', `/nonexistent:${dir}`)).toEqual({file: found, problem: null})
    expect(locateHookCommand('my_check', '/usr/bin')).toEqual({file: null, problem: 'my_check is not found in PATH (/usr/bin)'})
    expect(locateHookCommand(`${dir}/missing --x`, '')).toEqual({file: null, problem: `${dir}/missing does not exist`})
    expect(locateHookCommand(`${dir}/not_executable`, '')).toEqual({file: null, problem: `${dir}/not_executable is not executable`})
    expect(locateHookCommand(`${found} -s a`, '')).toEqual({file: found, problem: null})
  })

  it('mha check names the hook field of a command it cannot find', () => {
    const c = withHooks('  secondary_check: masterha_secondary_check -s h1\n  report: /nope/report')
    const snapshot: Snapshot = {
      ...structuredClone(goldenSnapshot),
      manager: {
        mysqlbinlog: '/usr/bin/mariadb-binlog',
        mysqlClient: '/usr/bin/mariadb',
        hooks: [
          {field: 'secondary_check', command: c.hooks.secondaryCheck!, file: null, problem: 'masterha_secondary_check is not found in PATH (/usr/bin)'},
          {field: 'report', command: '/nope/report', file: null, problem: '/nope/report does not exist'},
        ],
      },
    }
    const found = checkCluster(c, snapshot).findings.filter((f) => f.code === 'hook_not_found')
    expect(found.map((f) => [f.severity, f.message.split(':')[0]])).toEqual([
      ['error', 'hooks.secondary_check in /etc/mha/clusters/app1.yaml'],
      ['warning', 'hooks.report in /etc/mha/clusters/app1.yaml'],
    ])
    expect(found[0]!.message).toMatch(/masterha_secondary_check is not found in PATH/)
  })
})

describe('missing fencing and IP hooks are warned about', () => {
  it('in mha check, as warnings that do not change the verdict', () => {
    const bare = checkCluster(withHooks('  report: /bin/true'), goldenSnapshot)
    const warned = bare.findings.filter((f) => f.code === 'no_shutdown_hook' || f.code === 'no_master_ip_failover_hook')
    expect(warned.map((f) => [f.code, f.severity])).toEqual([
      ['no_shutdown_hook', 'warning'],
      ['no_master_ip_failover_hook', 'warning'],
    ])
    const hooked = checkCluster(withHooks('  shutdown: /bin/true\n  master_ip_failover: /bin/true'), goldenSnapshot)
    expect(hooked.findings.filter((f) => f.code.startsWith('no_') && f.code.endsWith('_hook'))).toEqual([])
    expect(hooked.verdict).toBe(bare.verdict)
    expect(hooked.failoverPossible).toBe(bare.failoverPossible)
  })

  it('not master_ip_failover when a routing section names proxies: the plan moves them itself', () => {
    const {hooks} = withHooks('  report: /bin/true')
    expect(missingHookWarnings(hooks, 0).map((w) => w.code)).toEqual(['no_shutdown_hook', 'no_master_ip_failover_hook'])
    expect(missingHookWarnings(hooks, 1).map((w) => w.code)).toEqual(['no_shutdown_hook'])
  })

  it('in the failover plan, shown by the renderer, covered by the digest and checked against the cluster file', () => {
    const onlyIp = withHooks('  master_ip_failover: /bin/true')
    const plan = planFor(onlyIp, goldenSnapshot, header)
    validatePlan(plan, 'plan.json')
    expect(plan.decision.warnings).toEqual([expect.stringMatching(/^hooks\.shutdown is not set: .* may keep taking writes/)])
    expect(renderPlan(plan)).toMatch(/^WARNING: hooks\.shutdown is not set/m)
    expect(planProblems(plan, onlyIp)).toEqual([])

    const hooked = withHooks('  master_ip_failover: /bin/true\n  shutdown: /bin/true')
    const full = planFor(hooked, goldenSnapshot, header)
    expect(full.decision.warnings).toBeUndefined()
    expect(renderPlan(full)).not.toMatch(/WARNING/)

    // A reviewer approves what they read: a warning removed from the file changes the digest and is refused.
    const edited = structuredClone(plan)
    delete edited.decision.warnings
    expect(planDigest(edited)).not.toBe(planDigest(plan))
    expect(planProblems(edited, onlyIp)).toEqual([expect.stringMatching(/^decision\.warnings: the plan says none, the hooks of .* give "hooks\.shutdown is not set/)])
  })
})

describe('passwords to hooks, as MHA does, opt-in', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mha-hooks-'))
  const record = script(dir, 'record', `out="$1"; shift; printf '%s\\n' "$@" > "$out.argv"; env > "$out.env"; echo "got $*" >&2; exit 1`)
  const secret = 'pa ss\'w0rd-for-hooks'
  const cluster = (pass: boolean) => parseClusterConfig(`${goldenYaml.replace('password: unused-in-golden-tests', `password: "${secret.replace(/'/g, "'")}"`)}hooks:\n  pass_passwords: ${pass}\n`, join(dir, 'app1.yaml'), {})

  it('the online change gets both, on its command line only with pass_passwords, in the environment always; its output is masked', async () => {
    for (const pass of [true, false]) {
      const out = join(dir, `online-${pass}`)
      const result = await runHook(`${record} ${out}`, {command: 'stop', orig_master_host: 'db1'}, 5000, passwordsFor(cluster(pass), hookPasswords.masterIpOnlineChange))
      const argv = readFileSync(`${out}.argv`, 'utf8').trim().split('\n')
      const env = readFileSync(`${out}.env`, 'utf8')
      expect(argv.slice(0, 2)).toEqual(['--command=stop', '--orig_master_host=db1'])
      expect(argv.slice(2)).toEqual(pass ? [`--orig_master_password=${secret}`, `--new_master_password=${secret}`] : [])
      expect(env).toContain(`MHA_ORIG_MASTER_PASSWORD=${secret}`)
      expect(env).toContain(`MHA_NEW_MASTER_PASSWORD=${secret}`)
      expect(result.code).toBe(1)
      expect(result.stderr).not.toContain(secret)
      if (pass) expect(result.stderr).toContain('--new_master_password=[secret]')
    }
  })

  it("the failover's start gets the new master's only; secondary_check gets --master_password", async () => {
    const out = join(dir, 'start')
    await runHook(`${record} ${out}`, {command: 'start'}, 5000, passwordsFor(cluster(true), hookPasswords.masterIpFailoverStart))
    expect(readFileSync(`${out}.argv`, 'utf8').trim().split('\n')).toEqual(['--command=start', `--new_master_password=${secret}`])
    expect(readFileSync(`${out}.env`, 'utf8')).not.toContain('MHA_ORIG_MASTER_PASSWORD')
    const check = join(dir, 'check')
    await runHook(`${record} ${check}`, {user: 'root'}, 5000, passwordsFor(cluster(true), hookPasswords.secondaryCheck))
    expect(readFileSync(`${check}.argv`, 'utf8').trim().split('\n')).toEqual(['--user=root', `--master_password=${secret}`])
    expect(readFileSync(`${check}.env`, 'utf8')).toContain(`MHA_MASTER_PASSWORD=${secret}`)
  })
})

describe("passwords to hooks are the named server's own", () => {
  it("the online change gets the old master's password and the new master's, each from its server's entry; output masks both", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mha-hooks-own-'))
    const record = script(dir, 'record', `out="$1"; shift; printf '%s\\n' "$@" > "$out.argv"; echo "$*" >&2; exit 1`)
    const base = parseClusterConfig(`${goldenYaml}hooks:\n  pass_passwords: true\n`, join(dir, 'app1.yaml'), {})
    const [orig, neu] = base.servers.map((s, i) => ({...s, password: new Secret(`own-pw-${i}`, 'test')}))
    const out = join(dir, 'own')
    const result = await runHook(`${record} ${out}`, {command: 'stop'}, 5000, passwordsFor(base, hookPasswords.masterIpOnlineChange, {orig, new: neu}))
    expect(readFileSync(`${out}.argv`, 'utf8').trim().split('\n')).toEqual(['--command=stop', '--orig_master_password=own-pw-0', '--new_master_password=own-pw-1'])
    expect(result.stderr).not.toMatch(/own-pw/)
    rmSync(dir, {recursive: true, force: true})
  })
})

describe('hooks are bounded in time', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mha-hooks-time-'))
  const gone = (pid: number) => {
    try {
      return readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] === 'Z'
    } catch {
      return true
    }
  }

  it('at its timeout a hook is killed with what it started (a child holding its output would keep the caller waiting)', async () => {
    const pidFile = join(dir, 'sleep.pid')
    const hung = script(dir, 'hung', `sleep 30 & echo $! > ${pidFile}; echo started; wait`)
    const result = await runHook(hung, {}, 300)
    expect(result).toMatchObject({code: null, timedOut: true, stdout: 'started\n'})
    const pid = Number(readFileSync(pidFile, 'utf8'))
    for (let i = 0; i < 50 && !gone(pid); i++) await new Promise((r) => setTimeout(r, 20))
    expect(gone(pid)).toBe(true)
  })

  it('a hook that exits leaving something in the background is over when it exits, as for MHA', async () => {
    const pidFile = join(dir, 'background.pid')
    const starter = script(dir, 'starter', `sleep 30 & echo $! > ${pidFile}; echo done; exit 0`)
    const result = await runHook(starter, {}, 20_000)
    expect(result).toEqual({code: 0, stdout: 'done\n', stderr: ''})
    process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL')
  })
})
