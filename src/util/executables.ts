import {accessSync, constants as fsConstants} from 'node:fs'
import {delimiter, isAbsolute, join} from 'node:path'

/** The first executable of `names` on PATH (or `names[0]` itself if it is a path). */
export function findExecutable(names: readonly string[], path = process.env.PATH ?? ''): string | undefined {
  for (const name of names) {
    if (name.includes('/')) return isExecutable(name) ? name : undefined
    for (const dir of path.split(delimiter)) {
      if (dir === '' || !isAbsolute(dir)) continue
      const candidate = join(dir, name)
      if (isExecutable(candidate)) return candidate
    }
  }
  return undefined
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, fsConstants.X_OK)
    return true
  } catch {
    return false
  }
}
