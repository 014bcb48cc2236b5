import {chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {loadClusterFile} from '../../src/config/load.js'
import type {ClusterConfig} from '../../src/config/types.js'
import {endpointOf} from '../../src/inspect/inspect.js'
import {applyBinlogs} from '../../src/recovery/index.js'
import {fixturePath} from '../fixtures/binlog/fixtures.js'
import {startSandbox, type TestSandbox} from './harness.js'

// The login really is used: mha connects with it to a real server and hands it to the client, which then
// fails saying it. The client here prints the password line of the option file it was given, as a careless
// or chatty client could: the error mha shows must still hold no password.
let sandbox: TestSandbox
let cluster: ClusterConfig
const work = mkdtempSync(join(tmpdir(), 'mha-it-apply-secret-'))

describe('a failed binlog apply never shows the password it used', () => {
  beforeAll(async () => {
    sandbox = await startSandbox('itsecret', 221, {replicas: 1})
    cluster = loadClusterFile(sandbox.configFile)
  })
  afterAll(async () => {
    await sandbox?.down()
    rmSync(work, {recursive: true, force: true})
  })

  it('redacts the password from what the client printed, names the server, and leaves no file', async () => {
    const client = join(work, 'chatty-client')
    writeFileSync(client, '#!/bin/sh\ngrep password <&3 >&2\nexit 1\n')
    chmodSync(client, 0o755)
    const temp = mkdtempSync(join(work, 'apply-'))
    const endpoint = endpointOf(cluster, cluster.servers.find((s) => s.name === 'db2')!)
    const error = await applyBinlogs([fixturePath('master', 'mysql-bin.000002')], endpoint, {timeoutMs: 20_000, tempDir: temp, mysql: client}).then(
      () => null,
      (e: unknown) => e as Error,
    )
    expect(error).toBeInstanceOf(Error)
    expect(cluster.password.reveal().length).toBeGreaterThan(0)
    expect(error!.message).toMatch(/^db2 \(127\.0\.0\.222:3306\): applying mysql-bin\.000002 failed: chatty-client: password=.*\[secret\]/)
    expect(error!.message).not.toContain(cluster.password.reveal())
    expect(readdirSync(temp)).toEqual([])
  })
})
