import {chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {delimiter, dirname, join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {secretsOf} from '../../src/sandbox/sandbox.js'
import {killMasterAndWait, runMha, startSandbox, type RunResult, type TestSandbox} from './harness.js'

// Migration from MHA (issue 14), on one sandbox: 127.0.0.211-213.
let s: TestSandbox
let work: string
let bin: string
const outputs: RunResult[] = []
const mha = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
  const result = await runMha(args, env)
  outputs.push(result)
  return result
}
/** The PATH of the spawned CLI, with the folder of this test's hook scripts in front. */
const withBin = () => ({PATH: `${bin}${delimiter}${process.env.PATH ?? ''}`})

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? filesUnder(path) : [path]
  })
}

/** A cluster file beside the sandbox's (its secret files are relative to that folder), with these hooks. */
function clusterWithHooks(name: string, hooks: string): string {
  const file = join(dirname(s.configFile), `${name}.yaml`)
  writeFileSync(file, `${readFileSync(s.configFile, 'utf8')}\nhooks:\n${hooks}\n`)
  return file
}

beforeAll(async () => {
  s = await startSandbox('mig', 211)
  work = mkdtempSync(join(tmpdir(), 'mha-it-mig-'))
  bin = join(work, 'bin')
  mkdirSync(bin)
  // A hook that records every call: its arguments one per line, then the password variables it was given.
  const recorder = (name: string) => {
    const file = join(bin, name)
    writeFileSync(file, `#!/bin/sh\nout="$1"; shift\n{ echo "--- call"; printf '%s\\n' "$@"; env | grep '^MHA_.*_PASSWORD=' | sort; } >> "$out"\nexit 0\n`)
    chmodSync(file, 0o755)
  }
  recorder('mig_vip')
  recorder('mig_report')
  recorder('mig_second_check')
}, 120_000)

afterAll(async () => {
  await s?.down()
})

describe('migration from MHA', () => {
  it('mha sandbox load run twice: both write, no error, distinct ids', async () => {
    const root = dirname(s.state.dir)
    const counts: number[] = []
    for (const run of [1, 2]) {
      const load = await mha(['sandbox', 'load', '--cluster', 'mig', '--dir', root, '--seconds', '2'])
      expect(load.code, `run ${run}: ${load.stderr}`).toBe(0)
      const m = /load: (\d+) writes acknowledged, (\d+) failed or unacknowledged/.exec(load.stdout)
      expect(m, load.stdout).not.toBeNull()
      expect(Number(m![2]), `run ${run}: ${load.stdout}`).toBe(0)
      counts.push(Number(m![1]))
    }
    expect(counts.every((n) => n > 0)).toBe(true)
    const rows = await s.sql('db1', (c) => c.queryOne('SELECT COUNT(*) AS n, COUNT(DISTINCT id) AS d, MIN(id) AS lo, MAX(id) AS hi FROM mhatest.acked'))
    expect(Number(rows!.n)).toBe(counts[0]! + counts[1]!)
    expect(Number(rows!.d)).toBe(Number(rows!.n))
    expect([Number(rows!.lo), Number(rows!.hi)]).toEqual([1, counts[0]! + counts[1]!])
  }, 60_000)

  it('mha check warns about the missing shutdown and master_ip_failover hooks, and still says OK', async () => {
    const check = await mha(['check', '--config', s.configFile])
    expect(check.code, check.stdout + check.stderr).toBe(0)
    expect(check.stdout).toMatch(/^WARNING +hooks\.shutdown is not set: .*may keep taking writes/m)
    expect(check.stdout).toMatch(/^WARNING +hooks\.master_ip_failover is not set: .*nothing redirects the application/m)
    expect(check.stdout).toMatch(/verdict: OK/)
  }, 60_000)

  it('mha check finds bare hook commands in PATH and names the field of one it cannot find', async () => {
    const file = clusterWithHooks('mig-check', ['  secondary_check: mig_second_check /dev/null -s 127.0.0.212', '  shutdown: ./no-such-fence.sh', '  master_ip_failover: mig_vip /dev/null'].join('\n'))
    const without = await mha(['check', '--config', file])
    expect(without.code).toBe(2)
    expect(without.stdout).toMatch(/^ERROR +hooks\.secondary_check in .*mig-check\.yaml: mig_second_check is not found in PATH/m)
    expect(without.stdout).toMatch(/^ERROR +hooks\.master_ip_failover in .*: mig_vip is not found in PATH/m)
    expect(without.stdout).toContain(`hooks.shutdown in ${file}: ${join(dirname(file), 'no-such-fence.sh')} does not exist`)

    const found = await mha(['check', '--config', file, '--json'], withBin())
    const report = JSON.parse(found.stdout) as {findings: {code: string; message: string}[]}
    expect(report.findings.filter((f) => f.code === 'hook_not_found').map((f) => f.message.split(':')[0])).toEqual([`hooks.shutdown in ${file}`])
    // Both hooks set: no missing-hook warning.
    expect(report.findings.filter((f) => f.code.startsWith('no_') && f.code.endsWith('_hook'))).toEqual([])
  }, 60_000)

  it('a failover with pass_passwords: the IP hook gets MHA password arguments and variables, the password is printed and recorded nowhere', async () => {
    const password = secretsOf(s.state.dir).admin.reveal()
    const calls = join(work, 'vip.calls')
    const reports = join(work, 'report.calls')
    // No shutdown hook: the plan warns about it.
    const file = clusterWithHooks('mig-failover', [`  master_ip_failover: mig_vip ${calls}`, `  report: mig_report ${reports}`, '  pass_passwords: true'].join('\n'))
    const plans = join(work, 'plans')
    const planFile = join(plans, 'mig', 'failover.json')
    await killMasterAndWait(s)

    const plan = await mha(['plan', '--config', file, '-o', planFile], withBin())
    expect(plan.code, plan.stderr).toBe(2)
    expect(plan.stdout).toMatch(/^WARNING: hooks\.shutdown is not set/m)
    expect(plan.stdout).not.toMatch(/hooks\.master_ip_failover is not set/)
    const digest = /Digest: ([0-9a-f]{64})/.exec(plan.stdout)![1]!

    const show = await mha(['show', planFile, '--config', file], withBin())
    expect(show.code, show.stdout + show.stderr).toBe(0)
    expect(show.stdout).toMatch(/^WARNING: hooks\.shutdown is not set/m)
    expect(show.stdout).toMatch(/run mig_vip \S+ --command=start with MHA's arguments --new_master_password=\[secret\]; the password in MHA_NEW_MASTER_PASSWORD/)

    const apply = await mha(['apply', planFile, '--config', file, '--expect-digest', digest], withBin())
    expect(apply.code, apply.stdout + apply.stderr).toBe(0)
    const applyJson = await mha(['apply', planFile, '--config', file, '--json'], withBin())
    expect(applyJson.code, applyJson.stderr).toBe(0)

    // The IP hook was found in PATH and called as MHA calls it: stop without a password, start with the new master's.
    const recorded = readFileSync(calls, 'utf8').split('--- call\n').filter(Boolean)
    const stop = recorded.find((c) => /^--command=stop/m.test(c))!
    const start = recorded.find((c) => /^--command=start$/m.test(c))!
    expect(stop).not.toContain(password)
    expect(start.split('\n')).toContain(`--new_master_password=${password}`)
    expect(start.split('\n')).toContain(`MHA_NEW_MASTER_PASSWORD=${password}`)
    expect(start.split('\n')).toContain('--new_master_host=127.0.0.212')
    expect(start).not.toContain('orig_master_password')
    // The report hook gets none.
    expect(readFileSync(reports, 'utf8')).not.toContain(password)

    // Nowhere in the plans folder (plan, journal, report, state) and in no output of the CLI.
    const written = filesUnder(plans)
    expect(written.length).toBeGreaterThan(1)
    for (const f of written) expect(readFileSync(f, 'utf8'), f).not.toContain(password)
    for (const o of outputs) expect(o.stdout + o.stderr).not.toContain(password)
  }, 180_000)
})
