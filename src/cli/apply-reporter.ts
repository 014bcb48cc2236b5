import {Listr} from 'listr2'
import type {ApplyEvent, ApplyListener, ApplyReport} from '../apply/events.js'
import type {Plan} from '../plan/types.js'

function describe(event: ApplyEvent): string {
  switch (event.kind) {
    case 'refused':
      return `refused: ${event.reason}`
    case 'resume':
      return `resuming: ${event.done} of ${event.total} steps were done in an earlier run`
    case 'begin':
      return `begin ${event.step.id}: ${event.step.reason}`
    case 'skip':
      return `skip  ${event.step.id}: ${event.reason}`
    case 'end':
      return `done  ${event.step.id}${Object.keys(event.outputs).length ? ` ${JSON.stringify(event.outputs)}` : ''}`
    case 'fail':
      return `FAIL  ${event.step.id}: ${event.message}`
    case 'finish':
      return `${event.report.status}: ${event.report.message}${event.report.dataLoss ? `; data loss: ${event.report.dataLoss}` : ''}${event.report.newMaster ? `; ${describeNewMaster(event.report.newMaster)}` : ''}`
  }
}

/** MHA's report line: where the new master took over, and how the old master follows it once repaired. */
export function describeNewMaster(n: NonNullable<ApplyReport['newMaster']>): string {
  const at = `${n.binlog.file}:${n.binlog.pos}${n.gtid ? ` (GTID ${n.gtid})` : ''}`
  return `new master ${n.server} took over at ${at}${n.oldMaster && n.repointOldMaster ? `; to make ${n.oldMaster} its replica once repaired: ${n.repointOldMaster}; START SLAVE (or: mha plan --rejoin ${n.oldMaster})` : ''}`
}

/** Without a TTY: one timestamped line per event. */
export function lineReporter(write: (line: string) => void): ApplyListener {
  return (event) => write(`${new Date().toISOString()} ${describe(event)}`)
}

interface Deferred {
  promise: Promise<string | undefined>
  resolve(skipReason?: string): void
  reject(error: Error): void
}

function deferred(): Deferred {
  let resolve!: (v: string | undefined) => void
  let reject!: (e: Error) => void
  const promise = new Promise<string | undefined>((res, rej) => {
    resolve = res
    reject = rej
  })
  return {promise, resolve: (reason) => resolve(reason), reject}
}

/** On a TTY: a listr2 tree of the plan's steps that follows the executor's events; it decides nothing. */
export function listrReporter(plan: Plan): {listener: ApplyListener; run: Promise<void>; stop(): void} {
  const waits = new Map(plan.steps.map((s) => [s.id, deferred()]))
  const list = new Listr(
    plan.steps.map((step) => ({
      title: `${step.id}  ${step.reason}`,
      task: async (_ctx: unknown, task: {skip(message?: string): void; title: string}) => {
        const skipped = await waits.get(step.id)!.promise
        if (skipped !== undefined) task.skip(`${step.id}: ${skipped}`)
      },
    })),
    {concurrent: true, exitOnError: false, registerSignalListeners: false, rendererOptions: {collapseSubtasks: false, collapseSkips: false, showErrorMessage: true}},
  )
  const run = list.run().then(() => undefined, () => undefined)
  const stop = () => {
    // Steps that never ran are shown as skipped when the run ends early.
    for (const [id, wait] of waits) wait.resolve(`${id} was not run`)
  }
  const listener: ApplyListener = (event) => {
    if (event.kind === 'skip') waits.get(event.step.id)?.resolve(event.reason)
    else if (event.kind === 'end') waits.get(event.step.id)?.resolve()
    else if (event.kind === 'fail') waits.get(event.step.id)?.reject(new Error(event.message))
    else if (event.kind === 'finish' || event.kind === 'refused') stop()
  }
  return {listener, run, stop}
}
