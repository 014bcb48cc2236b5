import {readdirSync} from 'node:fs'
import {join} from 'node:path'
import {loadClusterFile} from '../config/load.js'
import type {ClusterConfig} from '../config/types.js'
import {UserError} from '../util/errors.js'

/** Every cluster file of a folder, or only the clusters named. */
export function loadClusters(configDir: string, names: readonly string[]): ClusterConfig[] {
  let files: string[]
  try {
    files = readdirSync(configDir).filter((f) => /\.ya?ml$/.test(f))
  } catch {
    throw new UserError(`${configDir}: cannot read this folder of cluster files; give --config-dir`)
  }
  const wanted = names.length > 0 ? names.map((n) => `${n}.yaml`) : files
  for (const file of wanted) if (!files.includes(file)) throw new UserError(`${join(configDir, file)}: no such cluster file`)
  const clusters = wanted.map((f) => loadClusterFile(join(configDir, f)))
  if (clusters.length === 0) throw new UserError(`${configDir}: no cluster files (*.yaml) to watch`)
  return clusters
}
