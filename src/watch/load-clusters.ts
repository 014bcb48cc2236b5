import {existsSync, readdirSync} from 'node:fs'
import {basename, join} from 'node:path'
import {clusterFile, clusterNameOf, loadClusterFile} from '../config/load.js'
import type {ClusterConfig} from '../config/types.js'
import {ConfigError, oneLine} from '../util/errors.js'

/** A cluster file that does not load (bad YAML, a value out of its schema, a secret file missing): why, in one line. */
export interface UnloadableFile {
  /** The cluster's name when the file says it, else the file's name without .yaml. */
  name: string
  file: string
  problem: string
}

/** What a folder (or one file) holds: the clusters that load, and the files that do not, each with its reason. */
export interface ClusterSelection {
  clusters: ClusterConfig[]
  unloadable: UnloadableFile[]
}

/** One file: its cluster, or why it does not load. Never throws. */
export function tryLoadCluster(file: string): ClusterConfig | UnloadableFile {
  try {
    return loadClusterFile(file)
  } catch (error) {
    let name: string
    try {
      name = clusterNameOf(file)
    } catch {
      name = basename(file).replace(/\.ya?ml$/, '')
    }
    return {name, file, problem: oneLine(error)}
  }
}

/**
 * Every cluster file of a folder, or only the clusters named. A file that does not load does not stop the
 * others: it is set aside with its reason. A folder that cannot be read, holds no cluster file, or lacks a
 * cluster named, is an error.
 */
export function loadClusters(configDir: string, names: readonly string[]): ClusterSelection {
  let files: string[]
  try {
    files = readdirSync(configDir).filter((f) => /\.ya?ml$/.test(f))
  } catch {
    throw new ConfigError(`${configDir}: cannot read this folder of cluster files; give --config-dir`)
  }
  const wanted = names.length > 0 ? names.map((n) => `${n}.yaml`) : files
  for (const file of wanted) if (!files.includes(file)) throw new ConfigError(`${join(configDir, file)}: no such cluster file`)
  if (wanted.length === 0) throw new ConfigError(`${configDir}: no cluster files (*.yaml) to watch`)
  return select(wanted.map((f) => join(configDir, f)))
}

function select(files: readonly string[]): ClusterSelection {
  const selection: ClusterSelection = {clusters: [], unloadable: []}
  for (const found of files.map(tryLoadCluster)) if ('problem' in found) selection.unloadable.push(found)
  else selection.clusters.push(found)
  return selection
}

/** What --config FILE, --cluster/--only NAME and --config-dir select: one file, the clusters named, or the whole folder. */
export function selectClusters(opts: {config?: string | undefined; configDir: string; names: readonly string[]}): ClusterSelection {
  if (!opts.config) return loadClusters(opts.configDir, opts.names)
  const file = clusterFile({config: opts.config})
  if (!existsSync(file)) throw new ConfigError(`${file}: no such cluster file`)
  return select([file])
}
