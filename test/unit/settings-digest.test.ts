import {readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {describe, expect, it} from 'vitest'
import {settingsDigest} from '../../src/config/digest.js'
import {parseClusterConfig} from '../../src/config/load.js'
import {planFor} from '../../src/plan/planner.js'
import type {Snapshot} from '../../src/inspect/types.js'
import {planProblems} from '../../src/plan/validate.js'

const golden = join(dirname(fileURLToPath(import.meta.url)), '../golden/mariadb-file-lagging')
const yaml = readFileSync(join(golden, 'cluster.yaml'), 'utf8')
const digestOf = (text: string, file = '/etc/mha/app1.yaml') => settingsDigest(parseClusterConfig(text, file, {}))

describe('a plan is bound to the settings of the cluster file it was made from', () => {
  it('the digest ignores where the file lies, comments, and what is local to a manager host', () => {
    const base = digestOf(yaml)
    expect(base).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(digestOf(yaml, '/elsewhere/copy.yaml')).toBe(base)
    expect(digestOf(`# reviewed 2026-12-07\n${yaml}`)).toBe(base)
    expect(digestOf(yaml.replace('connect_timeout: 3', 'connect_timeout: 5').replace('ping_interval: 1', 'ping_interval: 3'))).toBe(base)
    expect(digestOf(yaml.replace('/var/tmp/mha-sandbox/app1/id_ed25519', '/root/.ssh/id_mha'))).toBe(base)
    expect(digestOf(yaml.replace('password: unused-in-golden-tests', 'password: another'))).toBe(base)
    // Where this manager connects to db2 (its own route), not where replicas are pointed.
    expect(digestOf(yaml.replace('hostname: 127.0.0.12', 'hostname: 127.0.0.12\n    ip: 10.0.0.12'))).toBe(base)
  })

  it('the digest changes with anything a plan does: hooks, candidates, replication and failover rules, servers', () => {
    const base = digestOf(yaml)
    expect(digestOf(`${yaml}hooks:\n  shutdown: /usr/local/bin/fence\n`)).not.toBe(base)
    expect(digestOf(yaml.replace('    candidate_master: true\n', ''))).not.toBe(base)
    expect(digestOf(yaml.replace('gtid: off', 'gtid: auto'))).not.toBe(base)
    expect(digestOf(yaml.replace('hostname: 127.0.0.13', 'hostname: 127.0.0.14'))).not.toBe(base)
    expect(digestOf(yaml.replace('repl_user: repl', 'repl_user: replicator'))).not.toBe(base)
  })

  it('planProblems refuses a plan made from other settings, naming both files, and accepts it against the same settings elsewhere', () => {
    const snapshot = JSON.parse(readFileSync(join(golden, 'snapshot.json'), 'utf8')) as Snapshot
    const copy = parseClusterConfig(`${yaml}hooks:\n  shutdown: /usr/local/bin/fence\n`, '/tmp/copy/app1.yaml', {})
    const plan = planFor(copy, snapshot, {tool: 'mha test', createdAt: '2026-12-07T00:00:00.000Z', configFile: copy.file})
    const operators = parseClusterConfig(yaml, '/etc/mha/app1.yaml', {})
    const problems = planProblems(plan, operators)
    expect(problems[0]).toMatch(/^it was made from \/tmp\/copy\/app1\.yaml with other settings than \/etc\/mha\/app1\.yaml holds \(settings sha256:/)
    const genuine = planFor(operators, snapshot, {tool: 'mha test', createdAt: '2026-12-07T00:00:00.000Z', configFile: '/somewhere/else/app1.yaml'})
    expect(planProblems(genuine, parseClusterConfig(yaml, '/etc/mha/clusters/app1.yaml', {}))).toEqual([])
  })
})
