// The shape of the code, checked: imports between the CLI's modules never go round in a circle (a cycle means
// two modules are one in disguise, and neither can be read or tested alone).
import assert from 'node:assert/strict'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { describe, it } from 'node:test'
import { repo } from '../helpers/cli.js'

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

describe('layers', () => {
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
