import {Flags} from '@oclif/core'
import {defaultConfigDir} from '../config/load.js'
import {defaultEtcdDir} from '../sandbox/etcd.js'
import {defaultSandboxRoot} from '../sandbox/sandbox.js'

/**
 * Flag sets, each given only to the commands that honour every flag in it: a flag that is accepted and
 * then ignored is worse than an unknown flag.
 */

/** Commands that act on one cluster file: --cluster NAME (in --config-dir) or --config FILE. */
export const clusterFlags = {
  cluster: Flags.string({char: 'c', description: 'Cluster name: reads <config-dir>/<name>.yaml.', helpGroup: 'CLUSTER', exclusive: ['config']}),
  config: Flags.string({description: 'Cluster file to read instead of <config-dir>/<cluster>.yaml.', helpGroup: 'CLUSTER'}),
  'config-dir': Flags.string({description: 'Folder of cluster files.', default: defaultConfigDir, helpGroup: 'CLUSTER', exclusive: ['config']}),
}

/** The sandbox commands: which sandbox, and where its data lives. */
export const sandboxFlags = {
  cluster: Flags.string({char: 'c', description: 'Sandbox (and cluster) name.', default: 'app1'}),
  dir: Flags.string({description: 'Root folder for sandbox data.', default: defaultSandboxRoot}),
}

/** The etcd sandbox commands: where its state, data and logs live. */
export const etcdSandboxFlags = {
  dir: Flags.string({description: 'Folder of the etcd sandbox (its state file etcd.json, data and logs); up wants it new or empty.', default: defaultEtcdDir}),
}

export const jsonFlag = (what: string) => ({json: Flags.boolean({description: `Print ${what} as JSON on stdout; errors too, as {"error": {code, message, kind}} (schemas/error.schema.json).`, default: false})})

export const plansDirFlag = (description: string) => ({'plans-dir': Flags.string({description, default: 'plans'})})
