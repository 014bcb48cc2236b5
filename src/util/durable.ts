import {closeSync, existsSync, fsyncSync, openSync, renameSync, writeSync} from 'node:fs'
import {dirname} from 'node:path'

/** A folder's entries (a file created, renamed or removed in it) on disk. */
export function fsyncDirectory(dir: string): void {
  syncFile(dir)
}

function writeAndSync(file: string, flag: string, text: string, mode?: number): void {
  const fd = openSync(file, flag, mode)
  try {
    writeSync(fd, text)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

/** A file's content written so far (by this process or another), on disk; for a folder, its entries. */
export function syncFile(file: string): void {
  const fd = openSync(file, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

/** A new file (flag wx: never one that exists) with its content on disk; its name is the caller's to sync. */
export function writeNewFileSynced(file: string, text: string, mode = 0o600): void {
  writeAndSync(file, 'wx', text, mode)
}

/** Appends text and returns once it is on disk, with the file's name too when this append created it. */
export function appendDurably(file: string, text: string): void {
  const created = !existsSync(file)
  writeAndSync(file, 'a', text)
  if (created) fsyncDirectory(dirname(file))
}

/** Replaces a file whole: written aside, synced, renamed over it, the folder synced. A crash leaves the old or the new. */
export function replaceDurably(file: string, text: string): void {
  const aside = `${file}.partial`
  writeAndSync(aside, 'w', text)
  renameSync(aside, file)
  fsyncDirectory(dirname(file))
}
