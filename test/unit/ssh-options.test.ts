import {describe, expect, it} from 'vitest'
import {parseSshOptions, shellWords, SshOptionError} from '../../src/config/ssh-options.js'

function refusal(text: string): string {
  try {
    parseSshOptions(text)
  } catch (error) {
    expect(error).toBeInstanceOf(SshOptionError)
    return (error as Error).message
  }
  throw new Error(`expected "${text}" to be refused`)
}

describe('MHA ssh_options', () => {
  it('splits words as the shell MHA handed them to did', () => {
    expect(shellWords(`-o 'UserKnownHostsFile=/a b/kh' -i "/k/id rsa" -p\\ 22 -o ""`)).toEqual(['-o', 'UserKnownHostsFile=/a b/kh', '-i', '/k/id rsa', '-p 22', '-o', ''])
    expect(() => shellWords(`-i '/k`)).toThrow(`has an unclosed ' quote`)
  })

  it('reads what MHA users typically had into settings', () => {
    expect(parseSshOptions('-o ConnectTimeout=3 -i /path/key -p 2222 -l mha -o UserKnownHostsFile=/etc/mha/kh -o StrictHostKeyChecking=yes -q')).toEqual({
      connectTimeoutSeconds: 3,
      identityFile: '/path/key',
      port: 2222,
      user: 'mha',
      knownHostsFile: '/etc/mha/kh',
    })
    expect(parseSshOptions('-oPort=2200 -oUser=x -ikey2')).toEqual({port: 2200, user: 'x', identityFile: 'key2'})
    expect(parseSshOptions('-o identityfile=/k -o "ConnectTimeout 9" -o BatchMode=yes -o PasswordAuthentication=no -T -x -a')).toEqual({identityFile: '/k', connectTimeoutSeconds: 9})
    expect(parseSshOptions('-o HostKeyAlgorithms=ssh-rsa,rsa-sha2-512 -o IdentityAgent=/run/agent.sock')).toEqual({hostKeyAlgorithms: ['ssh-rsa', 'rsa-sha2-512'], identityAgent: '/run/agent.sock'})
    expect(parseSshOptions('-o IdentityAgent=$SSH_AUTH_SOCK').identityAgent).toBe('SSH_AUTH_SOCK')
    expect(parseSshOptions('-o IdentityAgent=none').identityAgent).toBe('none')
    expect(parseSshOptions('')).toEqual({})
  })

  it('refuses StrictHostKeyChecking other than yes: mha never talks to an unverified host', () => {
    expect(refusal('-o StrictHostKeyChecking=no')).toMatch(/^"-o StrictHostKeyChecking=no" would let mha talk to a host whose key it has not verified.*ssh-keyscan/)
    expect(refusal('-o StrictHostKeyChecking=accept-new')).toMatch(/^"-o StrictHostKeyChecking=accept-new" would let/)
  })

  it.each([
    ['-o ForwardAgent=yes', '"-o ForwardAgent=yes" is not an ssh option mha can honour'],
    ['-o ServerAliveInterval=60', '"-o ServerAliveInterval=60" is not an ssh option mha can honour'],
    ['-A', '"-A" is not an ssh option mha can honour'],
    ['-C', '"-C" is not an ssh option mha can honour'],
    ['-p', '"-p" needs a value'],
    ['-p 70000', '"-p 70000" needs a port from 1 to 65535'],
    ['-o ConnectTimeout=0', '"-o ConnectTimeout=0" needs a whole number of seconds'],
    ['-o UserKnownHostsFile="/a /b"', 'names several files'],
    ['-o HostKeyAlgorithms=ssh-ed25519-cert-v01@openssh.com', 'asks for ssh-ed25519-cert-v01@openssh.com, which mha\'s SSH client cannot verify'],
    ['-o HostKeyAlgorithms=+ssh-rsa', 'changes a default list'],
    ['-o IdentityAgent=$HOME/agent', 'names an environment variable'],
    ['-o BatchMode=no', 'mha never prompts'],
    ['-o PasswordAuthentication=yes', 'keys and ssh-agent only'],
    ['-p 22 -p 2222', '"-p 2222" sets port a second time'],
    ['-o NoValue', '"-o NoValue" is not Keyword=value'],
  ])('refuses %s, naming the option', (text, message) => {
    expect(refusal(text)).toContain(message)
  })
})
