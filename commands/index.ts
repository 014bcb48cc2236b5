// The whole command surface of mha, in one place. oclif does not import this file: it finds each command by
// its file (commands/sandbox/up.ts is "sandbox:up") through oclif.manifest.json, written at build
// (scripts/oclif-manifest.ts), so that a command imports only its own module. The build and a unit test check
// that these ids and the files agree.
import Ack from './ack.js'
import Apply from './apply.js'
import Check from './check.js'
import ConfigImportMha from './config/import-mha.js'
import PlanCommand from './plan.js'
import Show from './show.js'
import Status from './status.js'
import Switchover from './switchover.js'
import Watch from './watch.js'
import SandboxAddHost from './sandbox/add-host.js'
import SandboxDown from './sandbox/down.js'
import SandboxEtcdDown from './sandbox/etcd/down.js'
import SandboxEtcdStatus from './sandbox/etcd/status.js'
import SandboxEtcdUp from './sandbox/etcd/up.js'
import SandboxKillMaster from './sandbox/kill-master.js'
import SandboxLoad from './sandbox/load.js'
import SandboxStartHost from './sandbox/start-host.js'
import SandboxStatus from './sandbox/status.js'
import SandboxUp from './sandbox/up.js'

export const commands = {
  check: Check,
  plan: PlanCommand,
  show: Show,
  apply: Apply,
  switchover: Switchover,
  watch: Watch,
  ack: Ack,
  status: Status,
  'config:import-mha': ConfigImportMha,
  'sandbox:up': SandboxUp,
  'sandbox:down': SandboxDown,
  'sandbox:status': SandboxStatus,
  'sandbox:kill-master': SandboxKillMaster,
  'sandbox:start-host': SandboxStartHost,
  'sandbox:load': SandboxLoad,
  'sandbox:add-host': SandboxAddHost,
  'sandbox:etcd:up': SandboxEtcdUp,
  'sandbox:etcd:down': SandboxEtcdDown,
  'sandbox:etcd:status': SandboxEtcdStatus,
}
