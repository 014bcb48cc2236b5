import {describe, expect, it} from 'vitest'
import {settingsDigest} from '../../src/config/digest.js'
import {parseClusterConfig} from '../../src/config/load.js'
import {UserError} from '../../src/util/errors.js'

const base = `name: app1
user: mha
password: {env: MHA_PW}
repl_user: repl
ssh: {user: root, port: 2222}
servers:
  - {name: db1, hostname: 10.0.0.1}
  - {name: db2, hostname: 10.0.0.2}
  - {name: db3, hostname: 10.0.0.3}
`
const env = {MHA_PW: 'pw', PX_PW: 'proxy-secret'}
const withRouting = (routing: string) => `${base}routing:\n${routing}`

function problem(text: string): string {
  try {
    parseClusterConfig(text, 'clusters/app1.yaml', env)
  } catch (error) {
    expect(error).toBeInstanceOf(UserError)
    return (error as Error).message
  }
  throw new Error('expected the config to be refused')
}

describe('routing section', () => {
  it('is empty without the section', () => {
    expect(parseClusterConfig(base, 'clusters/app1.yaml', env).proxies).toEqual([])
  })

  it('reads a TCP and an SSH-socket proxy, with defaults: mha names, the cluster login, 3 s', () => {
    const c = parseClusterConfig(
      withRouting(`  haproxy:
    - name: px1
      runtime_api: 10.0.0.9:9999
      writer_backend: mysql_writer
      frontend: 10.0.0.9:3306
      servers: {db2: mysql-2}
    - name: px2
      runtime_socket: {path: /run/haproxy/admin.sock, ssh_host: px2.example}
      writer_backend: be.rw
      frontend: "[fd00::9]:3307"
      verify_user: app
      verify_password: {env: PX_PW}
      timeout: 1.5
`),
      'clusters/app1.yaml',
      env,
    )
    const [p1, p2] = c.proxies
    expect(p1).toMatchObject({name: 'px1', runtimeApi: {kind: 'tcp', host: '10.0.0.9', port: 9999}, writerBackend: 'mysql_writer', frontend: {host: '10.0.0.9', port: 3306}, verifyUser: 'mha', timeoutMs: 3000})
    expect(p1!.servers).toEqual({db1: 'db1', db2: 'mysql-2', db3: 'db3'})
    expect(p1!.verifyPassword.reveal()).toBe('pw')
    expect(p2!.runtimeApi).toMatchObject({kind: 'socket', path: '/run/haproxy/admin.sock', sshHost: 'px2.example', sshPort: 2222, sshUser: 'root'})
    expect(p2).toMatchObject({frontend: {host: 'fd00::9', port: 3307}, verifyUser: 'app', timeoutMs: 1500})
    expect(p2!.verifyPassword.reveal()).toBe('proxy-secret')
    expect(JSON.stringify(c)).not.toContain('proxy-secret')
  })

  it('refuses, in one line naming the file and field, what cannot be used', () => {
    const proxy = (extra: string, api = 'runtime_api: 10.0.0.9:9999') => withRouting(`  haproxy:\n    - name: px1\n      ${api}\n      writer_backend: w\n      frontend: 10.0.0.9:3306\n${extra}`)
    const cases: [string, RegExp][] = [
      [proxy('      servers: {db7: x}\n'), /^clusters\/app1\.yaml:\d+:\d+ routing\.haproxy\[0\]\.servers\.db7: proxy px1: "db7" is not a server of this cluster \(servers are db1, db2, db3\)$/],
      [proxy('      servers: {db1: db2}\n'), /routing\.haproxy\[0\]\.servers: proxy px1: servers db1 and db2 are both "db2" in backend w; each needs its own$/],
      [proxy('', 'runtime_api: 10.0.0.9'), /^clusters\/app1\.yaml:\d+:\d+ routing\.haproxy\[0\]\.runtime_api: must match/],
      [proxy('', 'runtime_api: 10.0.0.9:99999'), /routing\.haproxy\[0\]\.runtime_api: "10\.0\.0\.9:99999" is not HOST:PORT with a port from 1 to 65535$/],
      [proxy('', 'runtime_socket: {path: /s, ssh_host: h}\n      runtime_api: 10.0.0.9:1'), /routing\.haproxy\[0\]: proxy px1: give exactly one of runtime_api/],
      [proxy('', 'timeout: 2'), /routing\.haproxy\[0\]: proxy px1: give exactly one of runtime_api/],
      [proxy('', 'runtime_socket: {path: relative.sock, ssh_host: h}'), /routing\.haproxy\[0\]\.runtime_socket\.path: must match/],
      [proxy('      verify_password: {env: NOPE}\n'), /routing\.haproxy\[0\]\.verify_password: environment variable NOPE is not set/],
      [proxy('      servers: {db1: "a b"}\n'), /routing\.haproxy\[0\]\.servers\.db1: must match/],
      [withRouting('  haproxy: []\n'), /routing\.haproxy: must NOT have fewer than 1 items/],
      [
        withRouting('  haproxy:\n    - {name: p, runtime_api: "h:1", writer_backend: w, frontend: "h:2"}\n    - {name: p, runtime_api: "h:3", writer_backend: w, frontend: "h:4"}\n'),
        /routing\.haproxy\[1\]\.name: "p" is used by two proxies/,
      ],
    ]
    for (const [text, expected] of cases) {
      const message = problem(text)
      expect(message.split('\n')).toHaveLength(1)
      expect(message).toMatch(expected)
    }
  })

  it('counts in the settings digest, except how this manager reaches the runtime API', () => {
    const a = withRouting('  haproxy:\n    - {name: p, runtime_api: "h:1", writer_backend: w, frontend: "h:2"}\n')
    const digest = (text: string) => settingsDigest(parseClusterConfig(text, 'clusters/app1.yaml', env))
    expect(digest(a)).not.toBe(digest(base))
    expect(digest(a.replace('"h:1"', '"other:9"'))).toBe(digest(a))
    expect(digest(a.replace('writer_backend: w', 'writer_backend: w2'))).not.toBe(digest(a))
  })
})
