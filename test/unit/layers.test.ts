// The shape of the code, checked: the folders of src/ are layers whose imports point one way (docs/architecture.md),
// and imports never go round in a circle (a cycle means two modules are one in disguise, and neither can be read
// or tested alone).
import assert from 'node:assert/strict'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { describe, it } from 'node:test'
import { repo } from '../helpers/cli.js'
// The one statement of the layer order, shared with the lint rule (eslint.config.js).
import { MAY_IMPORT } from '../../scripts/layers.mjs'

function importGraph(root: string): Map<string, string[]> {
  const files: string[] = []
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      const p = join(d, f)
      if (statSync(p).isDirectory()) walk(p)
      else if (p.endsWith('.ts')) files.push(p)
    }
  }
  walk(root)
  const graph = new Map<string, string[]>()
  for (const f of files) {
    const text = readFileSync(f, 'utf8')
    const deps = [...text.matchAll(/^(?:import|export)[^'"]*from '(\.[^']+)'/gm)].map((m) =>
      relative(repo, resolve(dirname(f), m[1]!.replace(/\.js$/, '.ts'))),
    )
    graph.set(relative(repo, f), deps)
  }
  return graph
}

function cycles(graph: Map<string, string[]>): string[] {
  const found: string[] = []
  const state = new Map<string, 'open' | 'done'>()
  const stack: string[] = []
  const visit = (n: string) => {
    state.set(n, 'open')
    stack.push(n)
    for (const d of graph.get(n) ?? []) {
      if (state.get(d) === 'open') found.push([...stack.slice(stack.indexOf(d)), d].join(' -> '))
      else if (!state.has(d)) visit(d)
    }
    stack.pop()
    state.set(n, 'done')
  }
  for (const n of graph.keys()) if (!state.has(n)) visit(n)
  return found
}

function wrongWay(graph: Map<string, string[]>): string[] {
  const layer = (f: string) => f.split('/')[1] ?? ''
  const found: string[] = []
  for (const [f, deps] of graph)
    for (const d of deps)
      if (d.startsWith('src/') && layer(d) !== layer(f) && !(MAY_IMPORT[layer(f)] ?? []).includes(layer(d)))
        found.push(`${f} -> ${d}`)
  return found
}

describe('layers', () => {
  it('every folder of src/ is a known layer, and imports point one way', () => {
    const graph = importGraph(join(repo, 'src'))
    const folders = new Set(
      [...graph.keys()]
        .map((f) => f.split('/'))
        .filter((p) => p.length > 2)
        .map((p) => p[1]!),
    )
    assert.deepEqual(
      [...folders].filter((f) => !(f in MAY_IMPORT)),
      [],
    )
    assert.deepEqual(wrongWay(graph), [])
  })

  it('finds an import that points the wrong way (the check itself can fail)', () => {
    const g = new Map([['src/platform/state.ts', ['src/cluster/cluster.ts']]])
    assert.deepEqual(wrongWay(g), ['src/platform/state.ts -> src/cluster/cluster.ts'])
  })

  it('keeps the platform model free of I/O: no cluster client, process, file or terminal in src/platform (types aside)', () => {
    for (const [f] of importGraph(join(repo, 'src/platform'))) {
      const text = readFileSync(join(repo, f), 'utf8')
      assert.doesNotMatch(
        text,
        // A type (a Kubernetes object's shape) is no I/O; a value import of these is.
        /^import (?!type )[^']*from '(@kubernetes\/client-node|execa|node:child_process|node:fs|node:readline|listr2|ora)'/m,
        f,
      )
    }
  })

  it('has no import cycle in src/, type imports included', () => {
    assert.deepEqual(cycles(importGraph(join(repo, 'src'))), [])
  })

  it('finds a cycle when there is one (the check itself can fail)', () => {
    const g = new Map([
      ['a.ts', ['b.ts']],
      ['b.ts', ['a.ts']],
    ])
    assert.deepEqual(cycles(g), ['a.ts -> b.ts -> a.ts'])
  })
})
