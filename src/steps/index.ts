import type {Step, StepType} from '../plan/types.js'
import {catchUpFrom} from './catch-up.js'
import {fenceMaster} from './fence.js'
import {runHookStep} from './hook.js'
import {applyLogs, saveMasterBinlog, saveRelayDiff} from './recovery.js'
import {detachReplication, enableWrites, recordPosition, repointReplica, stopReplicaIo, verifyReplication, waitRelayLogApplied} from './replication.js'
import {flashbackBinlog, setReadOnly} from './rejoin.js'
import {copyBackup, installBackup, markOutOfService, replicateFromCopy, startServer, stopServer} from './rebuild.js'
import {routeDrain, routeWriter} from './routing.js'
import {blockWrites, checkSwitchover, releaseWriteBlock, waitCaughtUp} from './switchover.js'
import type {StepHandler} from './types.js'

const handlers: {[K in StepType]: StepHandler<Extract<Step, {type: K}>>} = {
  stop_replica_io: stopReplicaIo,
  fence_master: fenceMaster,
  save_master_binlog: saveMasterBinlog,
  wait_relay_log_applied: waitRelayLogApplied,
  catch_up_from: catchUpFrom,
  save_relay_diff: saveRelayDiff,
  apply_logs: applyLogs,
  detach_replication: detachReplication,
  record_position: recordPosition,
  run_hook: runHookStep,
  enable_writes: enableWrites,
  repoint_replica: repointReplica,
  verify_replication: verifyReplication,
  check_switchover: checkSwitchover,
  block_writes: blockWrites,
  release_write_block: releaseWriteBlock,
  unblock_writes: enableWrites,
  wait_caught_up: waitCaughtUp,
  set_read_only: setReadOnly,
  flashback_binlog: flashbackBinlog,
  copy_backup: copyBackup,
  stop_server: stopServer,
  install_backup: installBackup,
  start_server: startServer,
  replicate_from_copy: replicateFromCopy,
  mark_out_of_service: markOutOfService,
  route_drain: routeDrain,
  route_writer: routeWriter,
}

export function handlerFor(step: Step): StepHandler {
  return handlers[step.type]
}
