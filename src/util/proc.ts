import {readFileSync} from 'node:fs'

/**
 * The fields of /proc/<pid>/stat after the command name, from field 3 (state) on, or null when the process is
 * gone. The command name (field 2) may hold spaces and parentheses: the fields are counted after its closing one.
 */
export function procStat(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  } catch {
    return null
  }
}

/** The kernel's start time of a process (clock ticks since boot): with the pid, it names one process for good. */
export function processStartTime(pid: number): string | null {
  return procStat(pid)?.[19] ?? null
}

