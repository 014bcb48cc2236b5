import {mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {UserError} from '../util/errors.js'

export const lockDir = process.env.MHA_LOCK_DIR ?? join(tmpdir(), 'mha-locks')

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** One apply (or watch action) per cluster on this machine; a lock left by a dead process is taken over. */
export function lockCluster(cluster: string, purpose: string): () => void {
  mkdirSync(lockDir, {recursive: true})
  const file = join(lockDir, `${cluster}.lock`)
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, JSON.stringify({pid: process.pid, purpose, since: new Date().toISOString()}), {flag: 'wx'})
      return () => rmSync(file, {force: true})
    } catch {
      let holder: {pid: number; purpose: string; since: string} | undefined
      try {
        holder = JSON.parse(readFileSync(file, 'utf8')) as {pid: number; purpose: string; since: string}
      } catch {
        holder = undefined
      }
      if (holder && alive(holder.pid)) throw new UserError(`cluster ${cluster} is locked by pid ${holder.pid} (${holder.purpose}, since ${holder.since}); wait for it to finish`)
      rmSync(file, {force: true})
    }
  }
  throw new UserError(`cannot take the lock ${file}; remove it if no mha process is running`)
}
