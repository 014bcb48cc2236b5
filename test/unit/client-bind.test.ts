import {chmodSync, mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {bindAddressOption, findExecutable} from '../../src/util/executables.js'

describe('binding the mysql client to source_address', () => {
  it('asks nothing when no source_address is set', () => {
    expect(bindAddressOption('/nonexistent/client', undefined)).toEqual([])
  })

  it("is left out for a client that has no --bind-address (MariaDB's, which refuses it)", () => {
    const mariadb = findExecutable(['mariadb', 'mysql'])!
    expect(bindAddressOption(mariadb, '127.0.0.9')).toEqual([])
  })

  it("is passed to a client whose help lists --bind-address (MySQL's)", () => {
    const dir = mkdtempSync(join(tmpdir(), 'mha-bind-'))
    const client = join(dir, 'mysql')
    writeFileSync(client, '#!/bin/sh\necho "  --bind-address=name IP address to bind to."\n')
    chmodSync(client, 0o755)
    expect(bindAddressOption(client, '127.0.0.9')).toEqual(['--bind-address=127.0.0.9'])
  })
})
