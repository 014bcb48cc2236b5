import {appendFileSync, existsSync, readFileSync} from 'node:fs'

/** One line of <plan>.journal.ndjson: what happened to a step, written before and after each effect. */
export interface JournalEntry {
  at: string
  step: string
  /** plan: the digest of the plan this journal belongs to, written once before the first step. */
  event: 'begin' | 'end' | 'skip' | 'fail' | 'plan'
  outputs?: Record<string, unknown>
  message?: string
}

export interface StepRecord {
  state: 'begun' | 'done' | 'skipped' | 'failed'
  outputs: Record<string, unknown>
  message: string | undefined
}

export class Journal {
  readonly file: string
  #digest: string | undefined

  /** The digest of the plan the journal was started for (after read()). */
  get digest(): string | undefined {
    return this.#digest
  }

  constructor(file: string) {
    this.file = file
  }

  /** The last state of every step, as the journal says; a torn last line (crash mid-write) is ignored. */
  read(): Map<string, StepRecord> {
    const records = new Map<string, StepRecord>()
    if (!existsSync(this.file)) return records
    for (const line of readFileSync(this.file, 'utf8').split('\n')) {
      if (line.trim() === '') continue
      let entry: JournalEntry
      try {
        entry = JSON.parse(line) as JournalEntry
      } catch {
        continue
      }
      if (entry.event === 'plan') {
        this.#digest ??= entry.message
        continue
      }
      const before = records.get(entry.step)
      const state = entry.event === 'begin' ? 'begun' : entry.event === 'end' ? 'done' : entry.event === 'skip' ? 'skipped' : 'failed'
      records.set(entry.step, {state, outputs: entry.outputs ?? before?.outputs ?? {}, message: entry.message})
    }
    return records
  }

  write(entry: Omit<JournalEntry, 'at'>): void {
    // appendFileSync: each line is on disk before the next effect starts.
    appendFileSync(this.file, JSON.stringify({at: new Date().toISOString(), ...entry}) + '\n')
  }
}
