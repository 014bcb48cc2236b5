import {execFile} from 'node:child_process'
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {withConnection, type ServerConnection} from '../../src/inspect/mysql.js'
import {adminEndpoint, hostNamed, sandboxDown, sandboxUp, type SandboxState} from '../../src/sandbox/sandbox.js'

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

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
export async function startSandbox(name: string, firstOctet: number, options: {replicas?: number; gtid?: boolean; semisync?: boolean} = {}): Promise<TestSandbox> {
  const work = mkdtempSync(join(tmpdir(), `mha-it-${name}-`))
  const state = await sandboxUp({
    cluster: name,
    replicas: options.replicas ?? 2,
    gtid: options.gtid ?? false,
    semisync: options.semisync ?? false,
    dir: join(work, 'sandbox'),
    configDir: join(work, 'clusters'),
    firstOctet,
  })
  return {
    state,
    configFile: state.configFile,
    sql: (host, fn) => withConnection(adminEndpoint(state, hostNamed(state, host)), 5000, fn),
    down: async () => {
      await sandboxDown(state.dir)
    },
  }
}
