/**
 * An effect refused because this process no longer holds the lease or lock it acted under. Its own module: the
 * executor and watch test for it without loading the etcd client (a command that never uses etcd starts faster).
 */
export class FencedError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'FencedError'
  }
}
