import {SshSession, withSsh, type SshTarget} from './ssh.js'

/** Runs fn on an SSH session to target: a fresh one per call (the commands), or a kept one (watch). */
export type SshRunner = <T>(target: SshTarget, fn: (session: SshSession) => Promise<T>) => Promise<T>

/** One connection per call, closed after it: what a command run once needs. */
export const freshSsh: SshRunner = withSsh

/** Every session of the map closed (those still opening once they open), the map emptied at once. */
async function closeAll(sessions: Map<string, Promise<SshSession>>): Promise<void> {
  const all = [...sessions.values()]
  sessions.clear()
  for (const s of all) (await s.catch(() => undefined))?.close()
}

// Sessions are shared only between uses that would authenticate and verify the host the same way.
const keyOf = (t: SshTarget) => JSON.stringify([t.user, t.host, t.port, t.localAddress ?? '', t.privateKeyFile ?? '', t.agent ?? '', t.knownHostsFile, t.hostKeyAlgorithms ?? []])

/**
 * SSH sessions kept open per host between uses, so that the inspection at a master's death and the steps
 * after it spend no handshake (a few hundred milliseconds each). A kept session found gone (the host
 * rebooted, sshd restarted) is replaced by a fresh one once; a host that does not answer fails as before.
 */
export class SshPool {
  readonly #sessions = new Map<string, Promise<SshSession>>()
  #closed = false

  /** The kept session to target, opened when there is none or it was lost. */
  async session(target: SshTarget): Promise<SshSession> {
    if (this.#closed) return await SshSession.open(target)
    const key = keyOf(target)
    const kept = this.#sessions.get(key)
    if (kept) {
      const session = await kept.catch(() => undefined)
      if (session && !session.lost) return session
      if (this.#sessions.get(key) === kept) this.#sessions.delete(key)
    }
    const opening = SshSession.open(target)
    this.#sessions.set(key, opening)
    // A failed open is not kept: the next use tries again.
    opening.catch(() => {
      if (this.#sessions.get(key) === opening) this.#sessions.delete(key)
    })
    return await opening
  }

  /** Open the session now, in the background, so that it is there when needed. */
  warm(target: SshTarget): void {
    this.session(target).catch(() => undefined)
  }

  /** Like withSsh, on the kept session; a session lost during fn (a reused one gone stale) is tried once more fresh. */
  readonly run: SshRunner = async (target, fn) => {
    // Closed (the watch stopping): a use still under way gets a session of its own, closed after it.
    if (this.#closed) return await withSsh(target, fn)
    const session = await this.session(target)
    try {
      return await fn(session)
    } catch (error) {
      if (!session.lost) throw error
      return await fn(await this.session(target))
    }
  }

  /** Forget the session to target (its host is declared dead: the next use connects afresh). */
  drop(target: SshTarget): void {
    const key = keyOf(target)
    const kept = this.#sessions.get(key)
    this.#sessions.delete(key)
    void kept?.then((s) => s.close()).catch(() => undefined)
  }

  get size(): number {
    return this.#sessions.size
  }

  async close(): Promise<void> {
    this.#closed = true
    await this.release()
  }

  /** Close every kept session; the pool stays usable (the next use opens one again). */
  async release(): Promise<void> {
    await closeAll(this.#sessions)
  }
}

/**
 * One session per target for the span of one job, opened ahead of its first use (open()) so that the handshake
 * (the slowest part of an inspection) overlaps the work before that use; every use of the target shares it, and
 * close() ends them all. Unlike SshPool, nothing is opened twice: a failed open is the failure of every use of
 * its target, as a fresh connection per use would have failed.
 */
export class SshSessions {
  readonly #sessions = new Map<string, Promise<SshSession>>()

  open(target: SshTarget): Promise<SshSession> {
    const key = keyOf(target)
    let opening = this.#sessions.get(key)
    if (!opening) {
      opening = SshSession.open(target)
      // Its failure is reported by the uses that await it; one opened and never used must not be unhandled.
      opening.catch(() => undefined)
      this.#sessions.set(key, opening)
    }
    return opening
  }

  readonly run: SshRunner = async (target, fn) => await fn(await this.open(target))

  async close(): Promise<void> {
    await closeAll(this.#sessions)
  }
}
