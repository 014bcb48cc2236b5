import {mkdtempSync, writeFileSync, chmodSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {entriesFor, KnownHostsFileError, parseKnownHosts, patternListMatches, preferredHostKeyAlgorithms, readKnownHosts, verifyHostKey} from '../../src/remote/known-hosts.js'

// Real keys, and a file hashed by the real `ssh-keygen -H` (db1.example on 22, [db2.example]:2222).
const ED = 'AAAAC3NzaC1lZDI1NTE5AAAAIPAp+52SwwdJ59SmC3YmifMhwkCfmq0lunmsJ681lt5d'
const RSA =
  'AAAAB3NzaC1yc2EAAAADAQABAAABAQDo42Vu56+jMFneMF7D8E4yuCENHSdjEhIR/B52U+vWBgUBjYj2sil60UhJO1g9eY6TQ69HCj6Kj3ig05Pc6lz5s6JgJsU0hC6vhVgjANP4mkePZyt59wYI0sVC0LOD7Oq7COa15hTHnmO8v20ZgQ1fSC8odebCOTPgtT1yQpKPlvfR+8Ch/BjtDMtNz0pYia08P2SuwLFyBLgtO39eICqZCvnhtk0+/z6o+GpBaFzLQ656FMr1Bik+KD3B3RCmzEOLiI4nX3LUJaKTEwu03Eu0e250HTV2Je/SGqbCHf6FVBlL1YxwvK/hF0A8juqLmXKDZqDtaM3YdtJD+gu5wtbH'
const hashed = `|1|39/GcWsl2OmwyGBYEXKpR1MJb4o=|c4spldBi5+FrRv9vuKWeUcz8N9o= ssh-ed25519 ${ED}
|1|7M4ih2w/+cscqYpBSPiXY72AMmE=|9ajy6eIYsZVMbWclzW3JhNRNd/A= ssh-rsa ${RSA}
`
const blob = (base64: string) => Buffer.from(base64, 'base64')
const verdict = (text: string, host: string, port: number, key: string) => verifyHostKey(entriesFor(parseKnownHosts(text), host, port), blob(key))

describe('known_hosts host patterns (OpenSSH match_hostname)', () => {
  it.each([
    [['db1.example'], 'db1.example', true],
    [['DB1.Example'], 'db1.example', true],
    [['db2.example', 'db1.example'], 'db1.example', true],
    [['*.example'], 'db1.example', true],
    [['db?.example'], 'db1.example', true],
    [['db?.example'], 'db10.example', false],
    [['*.example', '!db1.example'], 'db1.example', false],
    [['!db1.example', '*.example'], 'db2.example', true],
    [['!db1.example'], 'db2.example', false],
    [['[db1.example]:2222'], '[db1.example]:2222', true],
    [['db1.example'], '[db1.example]:2222', false],
    [['[db*.example]:2222'], '[db1.example]:2222', true],
    [['10.0.0.1'], '10.0.0.11', false],
    [['10.0.0.1'], '10a0a0a1', false],
  ])('%j against %s: %s', (patterns, name, expected) => {
    expect(patternListMatches(patterns, name)).toBe(expected)
  })
})

describe('known_hosts lookup and verification', () => {
  it('finds hashed entries written by ssh-keygen -H, for port 22 and [host]:port', () => {
    expect(verdict(hashed, 'db1.example', 22, ED)).toEqual({kind: 'match'})
    expect(verdict(hashed, 'DB1.example', 22, ED)).toEqual({kind: 'match'})
    expect(verdict(hashed, 'db2.example', 2222, RSA)).toEqual({kind: 'match'})
    expect(verdict(hashed, 'db2.example', 22, RSA)).toEqual({kind: 'unknown'})
    expect(verdict(hashed, 'db1.example', 22, RSA)).toEqual({kind: 'mismatch', offeredType: 'ssh-rsa', known: ['ssh-ed25519']})
  })

  it('a @revoked key is refused even when another line trusts it; @revoked applies only to the hosts it names', () => {
    const text = `db1.example ssh-ed25519 ${ED}\n@revoked * ssh-ed25519 ${ED}\n`
    expect(verdict(text, 'db1.example', 22, ED)).toEqual({kind: 'revoked', offeredType: 'ssh-ed25519'})
    const scoped = `db1.example,db2.example ssh-ed25519 ${ED}\n@revoked db2.example ssh-ed25519 ${ED}\n`
    expect(verdict(scoped, 'db1.example', 22, ED)).toEqual({kind: 'match'})
    expect(verdict(scoped, 'db2.example', 22, ED).kind).toBe('revoked')
  })

  it('a host named only by a @cert-authority line is reported as such, never as a match', () => {
    const text = `@cert-authority *.example ssh-ed25519 ${ED}\n`
    expect(verdict(text, 'db1.example', 22, ED)).toEqual({kind: 'ca_only'})
    expect(verdict(text, 'db1.other', 22, ED)).toEqual({kind: 'unknown'})
    // With a plain key too, the plain key decides.
    expect(verdict(text + `db1.example ssh-rsa ${RSA}\n`, 'db1.example', 22, ED).kind).toBe('mismatch')
  })

  it('skips comments, blank lines and unknown markers', () => {
    const entries = parseKnownHosts(`# comment\n\n@future db1.example ssh-ed25519 ${ED}\ndb1.example ssh-rsa ${RSA} a comment\n`)
    expect(entries.map((e) => [e.patterns, e.keyType, e.marker])).toEqual([[['db1.example'], 'ssh-rsa', undefined]])
  })
})

describe('host key algorithms offered (OpenSSH prefers what known_hosts holds)', () => {
  const offered = (text: string, host: string) => preferredHostKeyAlgorithms(entriesFor(parseKnownHosts(text), host, 22))
  it('an RSA-only entry puts the RSA algorithms first, SHA-2 before SHA-1', () => {
    expect(offered(`db1.example ssh-rsa ${RSA}\n`, 'db1.example')).toEqual([
      'rsa-sha2-512',
      'rsa-sha2-256',
      'ssh-rsa',
      'ssh-ed25519',
      'ecdsa-sha2-nistp256',
      'ecdsa-sha2-nistp384',
      'ecdsa-sha2-nistp521',
    ])
  })
  it('several known types keep file order; unknown hosts and CA-only hosts get the default', () => {
    expect(offered(`db1.example ssh-ed25519 ${ED}\ndb1.example ssh-rsa ${RSA}\n`, 'db1.example')?.slice(0, 4)).toEqual(['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'])
    expect(offered(`db1.example ssh-rsa ${RSA}\n`, 'db2.example')).toBeUndefined()
    expect(offered(`@cert-authority * ssh-ed25519 ${ED}\n`, 'db1.example')).toBeUndefined()
  })
})

describe('reading the known_hosts file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mha-kh-'))
  it('a missing file is named as missing, with what to do', () => {
    const file = join(dir, 'nope')
    expect(() => readKnownHosts(file)).toThrow(KnownHostsFileError)
    expect(() => readKnownHosts(file)).toThrow(`known_hosts file ${file} does not exist: create it with ssh-keyscan`)
  })
  it.skipIf(process.getuid?.() === 0)('an unreadable file is named as unreadable', () => {
    const file = join(dir, 'locked')
    writeFileSync(file, '')
    chmodSync(file, 0)
    expect(() => readKnownHosts(file)).toThrow(`known_hosts file ${file} cannot be read (EACCES)`)
  })
  it('a directory in its place is named as unreadable', () => {
    expect(() => readKnownHosts(dir)).toThrow(`known_hosts file ${dir} cannot be read (EISDIR)`)
  })
})
