import {spawnSync} from 'node:child_process'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'

describe('start-up', () => {
  it('loading every command loads no etcd client (gRPC, protobufjs): only a command given etcd loads it, when it needs it', () => {
    const body = `import {createRequire} from 'node:module'; await import('./commands/index.ts'); const loaded = Object.keys(createRequire(import.meta.url).cache); console.log(JSON.stringify({total: loaded.length, etcd: loaded.filter((k) => /node_modules\\/(etcd3|protobufjs|@grpc)\\//.test(k)).length}))`
    const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', body], {cwd: join(import.meta.dirname, '../..'), encoding: 'utf8'})
    expect(result.status, result.stderr).toBe(0)
    const counts = JSON.parse(result.stdout) as {total: number; etcd: number}
    // Other modules are loaded (the check itself is alive), none of etcd's.
    expect(counts.total).toBeGreaterThan(50)
    expect(counts.etcd).toBe(0)
  })

  it('mha plan\'s own module loads the SSH client but not the SQL client: the handshakes start before mysql2 is loaded', () => {
    const body = `import {createRequire} from 'node:module'; await import('./commands/plan.ts'); const loaded = Object.keys(createRequire(import.meta.url).cache); console.log(JSON.stringify({ssh2: loaded.some((k) => /node_modules\\/ssh2\\//.test(k)), mysql2: loaded.some((k) => /node_modules\\/mysql2\\//.test(k))}))`
    const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', body], {cwd: join(import.meta.dirname, '../..'), encoding: 'utf8'})
    expect(result.status, result.stderr).toBe(0)
    expect(JSON.parse(result.stdout)).toEqual({ssh2: true, mysql2: false})
  })

  it('mha switchover loads no SSH client (ssh2): a switchover opens no SSH session, and the client is loaded with the first one', () => {
    const body = `import {createRequire} from 'node:module'; await import('./commands/switchover.ts'); const loaded = Object.keys(createRequire(import.meta.url).cache); console.log(JSON.stringify({total: loaded.length, ssh2: loaded.filter((k) => /node_modules\\/ssh2\\//.test(k)).length}))`
    const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', body], {cwd: join(import.meta.dirname, '../..'), encoding: 'utf8'})
    expect(result.status, result.stderr).toBe(0)
    const counts = JSON.parse(result.stdout) as {total: number; ssh2: number}
    expect(counts.total).toBeGreaterThan(20)
    expect(counts.ssh2).toBe(0)
  })
})
