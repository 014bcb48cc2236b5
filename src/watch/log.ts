/** Human-readable lines by default, JSON lines with --log-format json. */
export type LogFormat = 'text' | 'json'

export type Logger = (cluster: string, event: string, message: string, fields?: Record<string, unknown>) => void

export function makeLogger(format: LogFormat, write: (line: string) => void): Logger {
  return (cluster, event, message, fields = {}) => {
    const at = new Date().toISOString()
    write(format === 'json' ? JSON.stringify({at, cluster, event, message, ...fields}) : `${at} [${cluster}] ${event}: ${message}`)
  }
}
