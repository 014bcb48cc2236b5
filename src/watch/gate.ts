/**
 * At most `limit` of one kind of work at once in this process, the others waiting their turn in order. A watch
 * of a thousand clusters starts a thousand inspections at once otherwise: a burst of connections that the servers
 * refuse or answer late (and this process reads late), and a peak of memory that stays in the process's size.
 */
export class Gate {
  readonly #limit: number
  #running = 0
  readonly #waiting: (() => void)[] = []

  constructor(limit: number) {
    this.#limit = limit
  }

  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#limit) await new Promise<void>((resolve) => this.#waiting.push(resolve))
    else this.#running++
    try {
      return await work()
    } finally {
      // The turn passes to the next in line (the count stays), or is given back.
      const next = this.#waiting.shift()
      if (next) next()
      else this.#running--
    }
  }

  /** Works waiting for their turn. */
  get waiting(): number {
    return this.#waiting.length
  }
}
