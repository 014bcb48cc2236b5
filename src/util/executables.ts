import {spawnSync} from 'node:child_process'
import {accessSync, constants as fsConstants} from 'node:fs'
import {delimiter, isAbsolute, join} from 'node:path'

/** The first executable of `names` on PATH (or `names[0]` itself if it is a path). */
export function findExecutable(names: readonly string[], path = process.env.PATH ?? ''): string | undefined {
  for (const name of names) {
    if (name.includes('/')) return isExecutable(name) ? name : undefined
    for (const dir of path.split(delimiter)) {
      if (dir === '' || !isAbsolute(dir)) continue
      const candidate = join(dir, name)
      if (isExecutable(candidate)) return candidate
    }
  }
  return undefined
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, fsConstants.X_OK)
    return true
  } catch {
    return false
  }
}

const bindSupport = new Map<string, boolean>()

/**
 * The client's option that binds its connection to the cluster's source_address, when it has one: MySQL's
 * client has --bind-address, MariaDB's (10.x, 11.x) has none and refuses it. Asked once per client binary.
 */
export function bindAddressOption(client: string, address: string | undefined): string[] {
  if (!address) return []
  if (!bindSupport.has(client)) {
    const help = spawnSync(client, ['--no-defaults', '--help', '--verbose'], {encoding: 'utf8', timeout: 5000})
    bindSupport.set(client, /^\s*--bind-address\b/m.test(help.stdout ?? ''))
  }
  return bindSupport.get(client) ? [`--bind-address=${address}`] : []
}
