import {appendFileSync, existsSync, readFileSync} from 'node:fs'
import {appendDurably, syncFile} from '../util/durable.js'

/** One line of <plan>.journal.ndjson: what happened to a step, written before and after each effect. */
export interface JournalEntry {
  at: string
  step: string
  /** plan: the digest of the plan this journal belongs to, written once before the first step. */
  event: 'begin' | 'end' | 'skip' | 'fail' | 'plan'
  outputs?: Record<string, unknown>
  message?: string
  /** The manager that wrote the line (etcd journals, where several may take turns). */
  by?: string
}

export interface StepRecord {
  state: 'begun' | 'done' | 'skipped' | 'failed'
  outputs: Record<string, unknown>
  message: string | undefined
}

/** What a journal read gives: the last state of every step, and the digest of the plan it was started for. */
export interface JournalRecords {
  records: Map<string, StepRecord>
  digest: string | undefined
}

/**
 * Where a plan's journal lives: a file beside the plan (one manager), or etcd (several, one acting at a time).
 * A write is durable before it returns: the next effect starts only after it. A write marked `deferSync` (a step's
 * end or skip, after which no effect of its own follows) may be only written when it returns: it is on disk with the
 * next durable write, which comes before the next effect, or with sync(). A host that crashes in between loses the
 * line as if it had crashed just before it: the resumed run checks that step again, and its check finds it done.
 * A process killed in between loses nothing (the line is written).
 */
export interface JournalStore {
  readonly where: string
  read(): Promise<JournalRecords>
  write(entry: Omit<JournalEntry, 'at'>, options?: {deferSync?: boolean}): Promise<void>
  /** Every line written so far on disk. */
  sync?(): Promise<void>
}

/** The last state of every step from journal lines in order; a torn line (crash mid-write) is ignored. */
export function parseJournalLines(lines: readonly string[]): JournalRecords {
  const records = new Map<string, StepRecord>()
  let digest: string | undefined
  for (const line of lines) {
    if (line.trim() === '') continue
    let entry: JournalEntry
    try {
      entry = JSON.parse(line) as JournalEntry
    } catch {
      continue
    }
    if (entry.event === 'plan') {
      digest ??= entry.message
      continue
    }
    const before = records.get(entry.step)
    const state = entry.event === 'begin' ? 'begun' : entry.event === 'end' ? 'done' : entry.event === 'skip' ? 'skipped' : 'failed'
    records.set(entry.step, {state, outputs: entry.outputs ?? before?.outputs ?? {}, message: entry.message})
  }
  return {records, digest}
}

/** The journal as a file beside the plan. */
export class Journal implements JournalStore {
  readonly file: string

  constructor(file: string) {
    this.file = file
  }

  get where(): string {
    return this.file
  }

  read(): Promise<JournalRecords> {
    return Promise.resolve(this.readNow())
  }

  readNow(): JournalRecords {
    return existsSync(this.file) ? parseJournalLines(readFileSync(this.file, 'utf8').split('\n')) : {records: new Map(), digest: undefined}
  }

  /** Lines written since the last fsync. */
  #unsynced = false

  write(entry: Omit<JournalEntry, 'at'>, options: {deferSync?: boolean} = {}): Promise<void> {
    const line = JSON.stringify({at: new Date().toISOString(), ...entry}) + '\n'
    if (options.deferSync === true && existsSync(this.file)) {
      appendFileSync(this.file, line)
      this.#unsynced = true
      return Promise.resolve()
    }
    // Synced (and the journal's name in its folder when this line created it), with the deferred lines before it:
    // each line is on disk before the next effect starts.
    appendDurably(this.file, line)
    this.#unsynced = false
    return Promise.resolve()
  }

  sync(): Promise<void> {
    if (this.#unsynced) syncFile(this.file)
    this.#unsynced = false
    return Promise.resolve()
  }
}
