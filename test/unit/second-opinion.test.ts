import {chmodSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {parseClusterConfig} from '../../src/config/load.js'
import {judge} from '../../src/watch/judge.js'
import {secondOpinion} from '../../src/watch/second-opinion.js'

// The user's secondary_check hook, run for real: a stub masterha_secondary_check records what it was given.

const golden = readFileSync(join(import.meta.dirname, '../golden/mariadb-file-lagging/cluster.yaml'), 'utf8')

function stub(exitCode: string, extra = ''): {cluster: ReturnType<typeof parseClusterConfig>; args: () => string[]; env: () => string} {
  const dir = mkdtempSync(join(tmpdir(), 'mha-secondary-'))
  const file = join(dir, 'masterha_secondary_check')
  writeFileSync(file, `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a"; done > ${dir}/args\nprintf '%s' "$MHA_MASTER_PASSWORD" > ${dir}/env\necho 'from the stub' >&2\n${exitCode}\n`)
  chmodSync(file, 0o755)
  const yaml = golden.replace('password: unused-in-golden-tests\nrepl_user', 'password: "s3cr3t pw"\nrepl_user') + `hooks:\n  secondary_check: ${file} -s remote_host1 -s remote_host2\n${extra}`
  return {
    cluster: parseClusterConfig(yaml, '/etc/mha/clusters/app1.yaml', {}),
    args: () => readFileSync(join(dir, 'args'), 'utf8').trim().split('\n'),
    env: () => readFileSync(join(dir, 'env'), 'utf8'),
  }
}

const lost = [{name: 'db2', reachable: true, ioThread: 'connecting' as const, lastIoError: ''}]
const down = {ok: false as const, kind: 'unreachable' as const, message: 'db1 (127.0.0.11:3306): cannot connect (ECONNREFUSED)'}

describe("secondary_check: the user's hook, with MHA's arguments and exit codes", () => {
  it("appends MHA 0.58's arguments to the user's own: --user --master_host --master_ip --master_port --master_user --ping_type; the password in the environment only", async () => {
    const {cluster, args, env} = stub('exit 0')
    const opinion = await secondOpinion(cluster, cluster.servers[0]!, [], 1000)
    expect(args()).toEqual(['-s', 'remote_host1', '-s', 'remote_host2', '--user=root', '--master_host=127.0.0.11', '--master_ip=127.0.0.11', '--master_port=3306', '--master_user=mha', '--ping_type=SELECT'])
    expect(env()).toBe('s3cr3t pw')
    expect(opinion).toEqual({routes: [], hook: {verdict: 'down', detail: 'secondary_check exited 0: from the stub'}})
  })

  it('with hooks.pass_passwords, --master_password too, as MHA passes it (masked in what mha shows)', async () => {
    const {cluster, args} = stub('echo "got $*" >&2; exit 3', '  pass_passwords: true\n')
    const opinion = await secondOpinion(cluster, cluster.servers[0]!, [], 1000)
    expect(args()).toContain('--master_password=s3cr3t pw')
    expect(opinion.hook?.detail).not.toContain('s3cr3t')
  })

  it.each([
    ['exit 0', 'down', 'dead'],
    ['exit 2', 'route_down', 'network'],
    ['exit 3', 'reachable', 'network'],
    ['exit 1', 'error', 'network'],
    ['exit 7', 'error', 'network'],
    ['sleep 10', 'error', 'network'],
  ])('%s: the hook says %s, and the master is judged %s (only 0, "down on every route", fails over)', async (exit, verdict, state) => {
    const {cluster} = stub(exit)
    const opinion = await secondOpinion(cluster, cluster.servers[0]!, [], 200)
    expect(opinion.hook?.verdict).toBe(verdict)
    if (exit.startsWith('sleep')) expect(opinion.hook?.detail).toMatch(/^secondary_check did not finish within 600 ms and was killed/)
    expect(judge({master: down, replicas: lost, sshReachable: null, secondOpinion: opinion}, 2, 2).state).toBe(state)
  })
})
