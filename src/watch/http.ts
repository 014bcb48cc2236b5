import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import type {AddressInfo} from 'node:net'
import {oneLine, UserError} from '../util/errors.js'
import {formatListenAddress, type ListenAddress} from './listen-address.js'
import {WatchMetrics} from './metrics.js'
import {clusterStatus, ReplicaMonitor, unloadedStatus, type WatchStatus} from './status-api.js'
import {UnloadedCluster, type WatchedCluster} from './unloaded.js'
import type {ClusterWatcher} from './watcher.js'

export interface StatusServerOptions {
  watchers: readonly WatchedCluster[]
  plansDir: string
  address: ListenAddress
  version: string
  startedAt: string
  /** With --etcd: this manager's name and lease state, asked at each request. */
  etcd?: () => NonNullable<WatchStatus['etcd']>
}

/** `mha watch --listen`: GET /metrics (Prometheus text format) and GET /status (JSON), on the given address only. */
export class StatusServer {
  readonly options: StatusServerOptions
  readonly metrics = new WatchMetrics()
  readonly monitors = new Map<ClusterWatcher, ReplicaMonitor>()
  #server: Server | undefined
  #bound: ListenAddress | undefined
  #stopping = false

  constructor(options: StatusServerOptions) {
    this.options = options
  }

  /** The replicas' look of a watcher, started with the server (or at once for a cluster whose file loaded later). */
  #monitor(watcher: ClusterWatcher): ReplicaMonitor | undefined {
    if (this.#stopping) return this.monitors.get(watcher)
    let monitor = this.monitors.get(watcher)
    if (!monitor) {
      monitor = new ReplicaMonitor(watcher)
      this.monitors.set(watcher, monitor)
      if (this.#server) monitor.start()
    }
    return monitor
  }

  /** The address really bound (port 0 becomes the port the system chose). */
  get address(): ListenAddress {
    if (!this.#bound) throw new Error('the status server is not listening')
    return this.#bound
  }

  status(now = Date.now()): WatchStatus {
    return {
      format: 1,
      watch: {pid: process.pid, startedAt: this.options.startedAt, listen: formatListenAddress(this.address), version: this.options.version},
      generatedAt: new Date(now).toISOString(),
      ...(this.options.etcd ? {etcd: this.options.etcd()} : {}),
      clusters: this.options.watchers.map((entry) => {
        const w = entry instanceof UnloadedCluster ? entry.watcher : entry
        return w ? clusterStatus(w.cluster, w, this.#monitor(w), this.options.plansDir, now) : unloadedStatus(entry.name, entry.unmonitored ?? '', this.options.plansDir)
      }),
    }
  }

  async start(): Promise<ListenAddress> {
    const server = createServer((req, res) => void this.#handle(req, res))
    const {host, port} = this.options.address
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) =>
        reject(new UserError(`--listen ${formatListenAddress(this.options.address)}: cannot listen there (${error.code === 'EADDRINUSE' ? 'the port is in use' : error.code === 'EADDRNOTAVAIL' ? 'no such address on this machine' : oneLine(error)})`)),
      )
      server.listen({host, port, exclusive: true}, () => resolve())
    })
    const bound = server.address() as AddressInfo
    this.#server = server
    this.#bound = {host, port: bound.port}
    // Those made by a status() before the server listened start now; the others start as they are made.
    for (const m of this.monitors.values()) m.start()
    for (const entry of this.options.watchers) {
      const w = entry instanceof UnloadedCluster ? entry.watcher : entry
      if (w) this.#monitor(w)
    }
    return this.#bound
  }

  async stop(): Promise<void> {
    this.#stopping = true
    await Promise.all([...this.monitors.values()].map((m) => m.stop()))
    const server = this.#server
    if (!server) return
    await new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const path = new URL(req.url ?? '/', 'http://localhost').pathname
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain; charset=utf-8', 'only GET\n', {allow: 'GET, HEAD'})
      if (path === '/metrics') return send(res, 200, this.metrics.contentType, await this.metrics.render(this.status()))
      if (path === '/status') return send(res, 200, 'application/json; charset=utf-8', JSON.stringify(this.status(), null, 2) + '\n')
      if (path === '/') return send(res, 200, 'text/plain; charset=utf-8', 'mha watch: GET /metrics (Prometheus), GET /status (JSON, schemas/watch-status.schema.json)\n')
      return send(res, 404, 'text/plain; charset=utf-8', 'not found: GET /metrics or /status\n')
    } catch (error) {
      return send(res, 500, 'text/plain; charset=utf-8', `mha watch: ${oneLine(error)}\n`)
    }
  }
}

function send(res: ServerResponse, code: number, type: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(code, {'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...headers})
  res.end(res.req.method === 'HEAD' ? undefined : body)
}
