import {existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import type {ApplyReport} from '../../src/apply/events.js'
import {planDigest, readPlan} from '../../src/plan/plan-file.js'
import type {Plan, Step} from '../../src/plan/types.js'
import {killMasterAndWait, runMha, serverStates, startSandbox, survivors, type TestSandbox} from './harness.js'

// A plan file is reviewed data: a tampered one is refused before the first change, a reviewer can approve
// exactly one plan by its digest, and mha never plans a failover of a master its replicas still stream from.

let sandbox: TestSandbox
const dir = mkdtempSync(join(tmpdir(), 'mha-it-data-'))
const marker = join(dir, 'hook-ran')

beforeAll(async () => {
  sandbox = await startSandbox('itdata', 141)
})
afterAll(async () => {
  await sandbox.down()
})

function write(name: string, plan: Plan): string {
  const file = join(dir, `${name}.json`)
  writeFileSync(file, JSON.stringify(plan, null, 2))
  return file
}

const tamper = (plan: Plan, id: string, change: (step: Step & {params: Record<string, unknown>}) => void): Plan => {
  const copy = structuredClone(plan)
  change(copy.steps.find((s) => s.id === id) as Step & {params: Record<string, unknown>})
  return copy
}

async function apply(file: string, extra: string[] = []): Promise<{code: number; report: ApplyReport; stderr: string}> {
  const result = await runMha(['apply', file, '--config', sandbox.configFile, '--json', ...extra])
  return {code: result.code, report: JSON.parse(result.stdout) as ApplyReport, stderr: result.stderr}
}

describe('the plan is data, not code', () => {
  it('refuses to plan a failover of a master that mha cannot reach while its replicas still stream from it', async () => {
    // mha's own route to db1 goes to a dead address; db1 is alive and its replicas replicate from it.
    const cut = join(dir, 'cut.yaml')
    writeFileSync(cut, readFileSync(sandbox.configFile, 'utf8').replace(`hostname: ${sandbox.state.hosts[0]!.ip}`, `hostname: ${sandbox.state.hosts[0]!.ip}\n    ip: 127.0.0.254`))
    const before = await serverStates(sandbox)
    const result = await runMha(['plan', '--config', cut, '-o', join(dir, 'cut-plan.json')])
    expect(result.code).toBe(1)
    expect(result.stderr.trim()).toMatch(/^mha: network problem, not a dead master: mha cannot reach db1 .*, but db2, db3 still replicate from it \(IO thread running\); no failover is planned/)
    expect(existsSync(join(dir, 'cut-plan.json'))).toBe(false)
    expect(await serverStates(sandbox)).toBe(before)
  })

  it('refuses every tampered plan with exit 1 before any change, and applies the untampered one approved by its digest', async () => {
    await killMasterAndWait(sandbox)
    const file = join(dir, 'failover.json')
    const planned = await runMha(['plan', '--config', sandbox.configFile, '-o', file])
    expect(planned.code, planned.stderr).toBe(2)
    const plan = readPlan(file)
    const digest = planDigest(plan)
    expect(planned.stdout).toContain(`--expect-digest ${digest}`)
    const shown = await runMha(['show', file, '--config', sandbox.configFile])
    expect(shown.code, shown.stderr).toBe(0)
    expect(shown.stdout).toContain(`db3 (${sandbox.state.hosts[2]!.ip}:3306): CHANGE MASTER TO MASTER_HOST = '${sandbox.state.hosts[1]!.ip}'`)
    expect(shown.stdout).toContain(`Digest: ${digest}`)

    const hookCommand = `touch ${marker}; exit 0; #`
    const cases: Array<[string, Plan, RegExp]> = [
      ['hook', tamper(plan, 'fence_master:db1', (s) => ((s.params.method = 'hook'), (s.params.hook = hookCommand))), /step fence_master:db1 params\.hook/],
      ['host', tamper(plan, 'repoint_replica:db3', (s) => (s.params.host = '127.0.0.250')), /step repoint_replica:db3 params\.host: the plan says 127\.0\.0\.250/],
      ['user', tamper(plan, 'repoint_replica:db3', (s) => (s.params.user = 'mha')), /step repoint_replica:db3 params\.user: the plan says mha/],
      ['port', tamper(plan, 'repoint_replica:db3', (s) => (s.params.port = 3307)), /step repoint_replica:db3 params\.port: the plan says 3307/],
      ['unknown server', tamper(plan, 'repoint_replica:db3', (s) => (s.server = 'db7')), /step repoint_replica:db3 server: db7 is not in/],
      ['empty steps', {...structuredClone(plan), steps: []}, /a failover plan without steps/],
      ['reordered steps', {...structuredClone(plan), steps: [...plan.steps].reverse()}, /listed after it \(steps reordered\?\)/],
    ]
    const before = await serverStates(sandbox)
    for (const [name, tampered, expected] of cases) {
      const result = await apply(write(name, tampered))
      expect(result.code, name).toBe(1)
      expect(result.report.status, name).toBe('refused')
      expect(result.report.message, name).toMatch(expected)
      expect(result.stderr.split('\n')[0], name).toMatch(/^mha: .*: the plan disagrees with /)
      // mha show names the same disagreement.
      const show = await runMha(['show', join(dir, `${name}.json`), '--config', sandbox.configFile])
      expect(show.code, name).toBe(1)
    }
    expect(existsSync(marker)).toBe(false)
    expect(await serverStates(sandbox)).toBe(before)

    // A plan made from a copy of the cluster file with hooks added, left in another folder: apply and show take the
    // operator's cluster file (--config, or the configured folder), never the one the plan names, and refuse it.
    const elsewhere = join(dir, 'elsewhere')
    mkdirSync(elsewhere)
    const ran = join(elsewhere, 'hook-ran')
    for (const hook of ['fence', 'move-ip']) writeFileSync(join(elsewhere, hook), `#!/bin/sh\necho ${hook} >> ${ran}\nexit 0\n`, {mode: 0o755})
    const copy = join(elsewhere, 'itdata.yaml')
    writeFileSync(copy, readFileSync(sandbox.configFile, 'utf8') + 'hooks:\n  shutdown: fence\n  master_ip_failover: move-ip\n')
    const copyPlan = join(dir, 'from-copy.json')
    expect((await runMha(['plan', '--config', copy, '-o', copyPlan])).code).toBe(2)
    expect(readPlan(copyPlan).header.configFile).toBe(copy)
    const configDir = join(sandbox.configFile, '..')
    for (const args of [['apply', copyPlan, '--config-dir', configDir], ['apply', copyPlan], ['show', copyPlan, '--config-dir', configDir]]) {
      const refused = await runMha(args)
      expect(refused.code, args.join(' ')).toBe(1)
      // apply: one line says why (a second, "next:", says what to do); show lists it among the disagreements.
      if (args[0] === 'apply') expect(refused.stderr.trim().split('\n')[0], args.join(' ')).toMatch(/^mha: .*(other settings than|does not exist)/)
      else expect(refused.stdout, args.join(' ')).toMatch(/apply will refuse it:\n {2}- it was made from .* with other settings than/)
    }
    const refused = await runMha(['apply', copyPlan, '--config-dir', configDir])
    expect(refused.stderr).toMatch(new RegExp(`it was made from ${copy} with other settings than ${sandbox.configFile} holds`))
    expect((await runMha(['apply', copyPlan])).stderr).toMatch(/clusters\/itdata\.yaml does not exist; give its cluster file with --config/)
    expect(existsSync(ran), 'no hook of the copy ran').toBe(false)
    expect(await serverStates(sandbox)).toBe(before)

    // Approval by digest: another plan (even one differing by a word) is refused, the approved one applies.
    const reworded = write('reworded', {...structuredClone(plan), decision: {...plan.decision, summary: plan.decision.summary + '.'}})
    const other = await apply(reworded, ['--expect-digest', digest])
    expect(other.code).toBe(1)
    expect(other.report.message).toMatch(/^the plan's digest is [0-9a-f]{64}, not the approved [0-9a-f]{64}: this is not the plan that was reviewed/)
    expect(await serverStates(sandbox)).toBe(before)
    const approved = await apply(file, ['--expect-digest', digest])
    expect(approved.report.status, approved.report.message).toBe('applied')
    expect(approved.report.digest).toBe(digest)
    expect(readFileSync(file.replace(/\.json$/, '.journal.ndjson'), 'utf8')).toContain(`"event":"plan","message":"${digest}"`)
    expect(await sandbox.sql('db2', async (c) => Number((await c.queryOne('SELECT @@global.read_only+0 AS ro'))!.ro))).toBe(0)
    const db3 = (await sandbox.sql('db3', (c) => c.queryOne('SHOW SLAVE STATUS')))!
    expect([db3.Master_Host, db3.Slave_IO_Running, db3.Slave_SQL_Running]).toEqual([sandbox.state.hosts[1]!.ip, 'Yes', 'Yes'])
    expect(survivors(sandbox)).toEqual(['db2', 'db3'])
  })
})
