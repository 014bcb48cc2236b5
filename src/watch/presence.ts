import {existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {processStartTime} from '../store/lock.js'
import {oneLine} from '../util/errors.js'
import {clientAddress, formatListenAddress, parseListenAddress} from './listen-address.js'
import type {ClusterStatus, WatchStatus} from './status-api.js'

/** plans/.watch.json: a running watch says here who it is, which clusters it watches and where it listens. */
export interface WatchPresence {
  pid: number
  /** /proc start time: with the pid, it names this process and no later one. */
  started: string | null
  startedAt: string
  clusters: string[]
  /** ADDR:PORT of --listen, or null without it. */
  listen: string | null
}

export function presenceFile(plansDir: string): string {
  return join(plansDir, '.watch.json')
}

export function writePresence(plansDir: string, presence: WatchPresence): void {
  const file = presenceFile(plansDir)
  mkdirSync(plansDir, {recursive: true})
  writeFileSync(file + '.tmp', JSON.stringify(presence, null, 2) + '\n')
  renameSync(file + '.tmp', file)
}

/** Removes the file if it is still this process's (another watch may have started over the same folder). */
export function removePresence(plansDir: string, pid = process.pid): void {
  const found = readPresence(plansDir)
  if (found?.pid === pid) rmSync(presenceFile(plansDir), {force: true})
}

export function readPresence(plansDir: string): WatchPresence | null {
  const file = presenceFile(plansDir)
  if (!existsSync(file)) return null
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as WatchPresence
  } catch {
    return null
  }
}

export type WatchView =
  | {running: false}
  | {running: true; pid: number; startedAt: string; listen: null}
  | {running: true; pid: number; startedAt: string; listen: string; status: ClusterStatus}
  | {running: true; pid: number; startedAt: string; listen: string; error: string}

/** Is a watch running for this cluster (same pid, same start time), and what does it say? */
export async function watchViewOf(plansDir: string, cluster: string, timeoutMs = 3000): Promise<WatchView> {
  const presence = readPresence(plansDir)
  if (!presence || !presence.clusters.includes(cluster)) return {running: false}
  const started = processStartTime(presence.pid)
  if (started === null || started !== presence.started) return {running: false}
  const base = {running: true as const, pid: presence.pid, startedAt: presence.startedAt}
  if (!presence.listen) return {...base, listen: null}
  try {
    const address = formatListenAddress(clientAddress(parseListenAddress(presence.listen)))
    const response = await fetch(`http://${address}/status`, {signal: AbortSignal.timeout(timeoutMs)})
    if (!response.ok) throw new Error(`HTTP ${response.status}`)
    const document = (await response.json()) as WatchStatus
    if (document.watch?.pid !== presence.pid) throw new Error(`it answers for pid ${document.watch?.pid}, not ${presence.pid}`)
    const status = document.clusters.find((c) => c.name === cluster)
    if (!status) throw new Error(`its /status has no cluster ${cluster}`)
    return {...base, listen: presence.listen, status}
  } catch (error) {
    return {...base, listen: presence.listen, error: `cannot read its /status at ${presence.listen}: ${oneLine(error)}`}
  }
}
