import * as Flags from '@oclif/core/flags'
import {defaultConfigDir} from '../config/load.js'

// The sandbox folders are only flag defaults, kept here: importing the sandbox modules for them would load the
// sandbox code (and mysql2, ssh2) in every command.
const defaultSandboxRoot = '/var/tmp/mha-sandbox'
const defaultEtcdDir = '/var/tmp/mha-sandbox-etcd'

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

/** Several managers through etcd (watch, apply, status, ack): leadership, the cluster lock, the shared journal. */
export const etcdFlags = {
  etcd: Flags.string({description: 'etcd endpoints, comma-separated (http(s)://HOST:PORT): several managers share the clusters, one acts per cluster. Also MHA_ETCD_ENDPOINTS.', helpGroup: 'ETCD'}),
  'etcd-prefix': Flags.string({description: 'Key prefix for everything mha keeps in etcd (default /mha).', helpGroup: 'ETCD'}),
  'etcd-lease-ttl': Flags.integer({description: 'Seconds a manager\'s lease outlives its last keepalive: how soon another takes over (default 5).', helpGroup: 'ETCD', min: 2}),
  'etcd-ca': Flags.string({description: 'CA certificate file for https:// endpoints.', helpGroup: 'ETCD'}),
  'etcd-cert': Flags.string({description: 'Client certificate file (with --etcd-key).', helpGroup: 'ETCD'}),
  'etcd-key': Flags.string({description: 'Client key file (mode 0600).', helpGroup: 'ETCD'}),
  'etcd-user': Flags.string({description: 'etcd user (with --etcd-password-file).', helpGroup: 'ETCD'}),
  'etcd-password-file': Flags.string({description: 'File holding the etcd user\'s password (mode 0600): never on the command line.', helpGroup: 'ETCD'}),
  'manager-config': Flags.string({description: 'Manager file (YAML) with an etcd: block (endpoints, prefix, lease_ttl, ca_file, cert_file, key_file, user, password_file) and an id.', helpGroup: 'ETCD'}),
  'watcher-id': Flags.string({description: 'This manager\'s name in etcd (default HOST:PID).', helpGroup: 'ETCD'}),
}
