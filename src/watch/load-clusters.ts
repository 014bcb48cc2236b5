import {readdirSync} from 'node:fs'
import {join} from 'node:path'
import {clusterFile, loadClusterFile} from '../config/load.js'
import type {ClusterConfig} from '../config/types.js'
import {ConfigError} from '../util/errors.js'

/** Every cluster file of a folder, or only the clusters named. */
export function loadClusters(configDir: string, names: readonly string[]): ClusterConfig[] {
  let files: string[]
  try {
    files = readdirSync(configDir).filter((f) => /\.ya?ml$/.test(f))
  } catch {
    throw new ConfigError(`${configDir}: cannot read this folder of cluster files; give --config-dir`)
  }
  const wanted = names.length > 0 ? names.map((n) => `${n}.yaml`) : files
  for (const file of wanted) if (!files.includes(file)) throw new ConfigError(`${join(configDir, file)}: no such cluster file`)
  const clusters = wanted.map((f) => loadClusterFile(join(configDir, f)))
  if (clusters.length === 0) throw new ConfigError(`${configDir}: no cluster files (*.yaml) to watch`)
  return clusters
}

/** What --config FILE, --cluster/--only NAME and --config-dir select: one file, the clusters named, or the whole folder. */
export function selectClusters(opts: {config?: string | undefined; configDir: string; names: readonly string[]}): ClusterConfig[] {
  return opts.config ? [loadClusterFile(clusterFile({config: opts.config}))] : loadClusters(opts.configDir, opts.names)
}
