import type {Step} from '../../src/plan/types.js'
import type {StepHandler} from '../../src/steps/types.js'

// Step handlers that touch nothing, for the executor's unit tests (vi.mock of src/steps/index.js): each acts or
// fails as a test says, so that which step and which undo runs after which failure is seen exactly.
export type Fate = 'fails in check' | 'fails in act'
export const fates = new Map<string, Fate>()
export const acts: string[] = []

export const handlerFor = (step: Step): StepHandler => ({
  check: (s) => (fates.get(s.id) === 'fails in check' ? Promise.reject(new Error(`${s.id}: connection refused`)) : Promise.resolve({done: false})),
  act: (s) => {
    acts.push(s.id)
    return fates.get(s.id) === 'fails in act' ? Promise.reject(new Error(`${s.id} failed part way`)) : Promise.resolve(step.outputs.length ? {binlog: {file: 'mysql-bin.000001', pos: 4}, gtid: '0-1-1'} : undefined)
  },
  verify: () => Promise.resolve(),
})
