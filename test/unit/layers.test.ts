import {readdirSync, readFileSync} from 'node:fs'
import {dirname, join, relative, resolve} from 'node:path'
import {describe, expect, it} from 'vitest'

const root = resolve(import.meta.dirname, '../..')

/** Every module under src/ and commands/ with the modules it imports (static, dynamic and type-only alike). */
function importGraph(): Map<string, string[]> {
  const files = ['src', 'commands'].flatMap((top) =>
    readdirSync(join(root, top), {recursive: true, encoding: 'utf8'})
      .filter((f) => f.endsWith('.ts'))
      .map((f) => join(top, f)),
  )
  const graph = new Map<string, string[]>()
  for (const file of files) {
    const text = readFileSync(join(root, file), 'utf8')
    const specs = [...text.matchAll(/\bfrom\s+['"](\.[^'"]+)['"]|\bimport\(\s*['"](\.[^'"]+)['"]\s*\)/g)].map((m) => (m[1] ?? m[2])!)
    graph.set(
      file,
      specs.map((spec) => relative(root, resolve(root, dirname(file), spec.replace(/\.js$/, '.ts')))),
    )
  }
  return graph
}

/** The cycle through `start`, as a path back to it, or null. */
function cycleThrough(graph: Map<string, string[]>, start: string): string[] | null {
  const seen = new Set<string>()
  const walk = (at: string, path: string[]): string[] | null => {
    for (const next of graph.get(at) ?? []) {
      if (next === start) return [...path, next]
      if (seen.has(next)) continue
      seen.add(next)
      const found = walk(next, [...path, next])
      if (found) return found
    }
    return null
  }
  return walk(start, [start])
}

describe('layers', () => {
  const graph = importGraph()

  it('steps, apply, cli, coord and store never import watch', () => {
    const wrong = [...graph].flatMap(([file, deps]) => (/^src\/(steps|apply|cli|coord|store)\//.test(file) ? deps.filter((d) => d.startsWith('src/watch/')).map((d) => `${file} -> ${d}`) : []))
    expect(wrong).toEqual([])
  })

  it('the one import circle left in src is the planner and check (the no-op plan carries check\'s report; check plans a failover to say whether one is possible)', () => {
    const inCircles = [...graph.keys()].filter((f) => f.startsWith('src/') && cycleThrough(graph, f) !== null)
    expect(inCircles.sort()).toEqual(['src/analysis/check.ts', 'src/plan/planner.ts'])
  })

  it('no module of the store or coord is in an import circle', () => {
    const circles = [...graph.keys()].filter((f) => /^src\/(store|coord)\//.test(f)).flatMap((f) => cycleThrough(graph, f) ?? [])
    expect(circles).toEqual([])
  })
})
