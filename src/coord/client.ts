import {readFileSync} from 'node:fs'
import {Etcd3} from 'etcd3'
import type {EtcdSettings} from './settings.js'

/** A unary etcd call that takes longer has no quorum behind it (or no network): it fails instead of hanging (bounded). */
export const etcdCallTimeoutMs = 2000

/**
 * gRPC's own deadline, well past the bound each call is waited for: a deadline gRPC sees pass makes the etcd client
 * close and reopen its channels to that member (watches included), and three in a row shut the member out for 5 s.
 * With 10,000 clusters, a process busy for two seconds turned one late answer into many seconds without etcd, and
 * lost its lease. It remains, so that a call nobody waits for any more does not live on.
 */
const grpcDeadlineMs = 5 * etcdCallTimeoutMs

export function etcdClient(settings: EtcdSettings): Etcd3 {
  const tls = settings.tls
  return new Etcd3({
    hosts: settings.endpoints,
    ...(tls
      ? {
          credentials: {
            rootCertificate: tls.caFile ? readFileSync(tls.caFile) : (undefined as unknown as Buffer),
            ...(tls.certFile && tls.keyFile ? {certChain: readFileSync(tls.certFile), privateKey: readFileSync(tls.keyFile)} : {}),
          },
        }
      : {}),
    // The token exchange is bounded by each call's own deadline (a fixed deadline here would be long past later).
    ...(settings.auth ? {auth: {username: settings.auth.user, password: settings.auth.password.reveal()}} : {}),
    dialTimeout: etcdCallTimeoutMs,
    defaultCallOptions: (context) => (context.isStream ? {} : {deadline: Date.now() + grpcDeadlineMs}),
  })
}

/** Any promise bounded in time: etcd without quorum accepts a call and never answers it. */
export async function bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    // Judged after the I/O that waited meanwhile is read (see keepAliveOnce): a busy process is not etcd without quorum.
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => setImmediate(() => reject(new Error(`etcd: ${what} timed out after ${ms} ms`))), ms)))])
  } finally {
    clearTimeout(timer)
  }
}
