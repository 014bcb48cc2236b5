import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import type {AddressInfo} from 'node:net'
import {oneLine, UserError} from '../util/errors.js'
import {formatListenAddress, type ListenAddress} from './listen-address.js'
import {WatchMetrics} from './metrics.js'
import {clusterStatus, ReplicaMonitor, type WatchStatus} from './status-api.js'
import type {ClusterWatcher} from './watcher.js'

export interface StatusServerOptions {
  watchers: readonly ClusterWatcher[]
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
  readonly monitors: Map<ClusterWatcher, ReplicaMonitor>
  #server: Server | undefined
  #bound: ListenAddress | undefined

  constructor(options: StatusServerOptions) {
    this.options = options
    this.monitors = new Map(options.watchers.map((w) => [w, new ReplicaMonitor(w)]))
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
      clusters: this.options.watchers.map((w) => clusterStatus(w.cluster, w, this.monitors.get(w), this.options.plansDir, now)),
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
    for (const m of this.monitors.values()) m.start()
    return this.#bound
  }

  async stop(): Promise<void> {
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
