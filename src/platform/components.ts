// The component plan: the DAG read from the rendered Installer CR's spec.components (never hard-coded),
// validated and cut into layers. Pure functions, no I/O.
import { ExitCode, UserError } from './errors.js'

export interface Component {
  name: string
  kind: string
  chart?: string
  version: string
  repo?: string
  deps: string[]
  tier?: string
  feature?: string
  expose?: boolean
  exposePort?: number
  svcMatch?: string
  configKeys?: string[]
  consumer?: boolean
}

export interface InstallerSpec {
  components?: Partial<Component>[]
  features?: Record<string, boolean>
  namespaces?: { krateo?: string }
  exposure?: { type?: string; port?: number | null }
  [key: string]: unknown
}

export function parseComponents(spec: InstallerSpec): Component[] {
  return (spec.components ?? []).map((c, i) => {
    if (!c.name || !c.kind || !c.version) {
      throw new UserError(
        `component #${i + 1} of the installer chart lacks name, kind or version`,
        ExitCode.Chart,
        'use a released installer chart version',
      )
    }
    return { ...c, name: c.name, kind: c.kind, version: String(c.version), deps: c.deps ?? [] }
  })
}

/** A component is enabled when it has no feature flag or its flag is true. */
export function isEnabled(c: Component, features: Record<string, boolean> | undefined): boolean {
  return !c.feature || features?.[c.feature] === true
}

/** Checks names are unique, every dep exists, and there is no cycle; names the culprit otherwise. */
export function validateDag(components: Component[]): void {
  const byName = new Map<string, Component>()
  for (const c of components) {
    if (byName.has(c.name))
      throw new UserError(
        `component "${c.name}" is listed twice in the installer chart`,
        ExitCode.Chart,
        'fix spec.components (or componentValues) and retry',
      )
    byName.set(c.name, c)
  }
  for (const c of components) {
    for (const d of c.deps) {
      if (!byName.has(d))
        throw new UserError(
          `component "${c.name}" depends on unknown component "${d}"`,
          ExitCode.Chart,
          'fix its deps in the installer chart values',
        )
    }
  }
  const state = new Map<string, 'visiting' | 'done'>()
  const visit = (name: string, path: string[]): void => {
    if (state.get(name) === 'done') return
    if (state.get(name) === 'visiting') {
      const cycle = [...path.slice(path.indexOf(name)), name]
      throw new UserError(
        `the component DAG has a cycle: ${cycle.join(' -> ')}`,
        ExitCode.Chart,
        'break the cycle in the deps of those components',
      )
    }
    state.set(name, 'visiting')
    for (const d of byName.get(name)!.deps) visit(d, [...path, name])
    state.set(name, 'done')
  }
  for (const c of components) visit(c.name, [])
}

/** Layers of the DAG: layer 0 has no deps, layer n depends only on layers < n. */
export function layers(components: Component[]): Component[][] {
  const depth = new Map<string, number>()
  const byName = new Map(components.map((c) => [c.name, c]))
  const depthOf = (c: Component): number => {
    const known = depth.get(c.name)
    if (known !== undefined) return known
    const d = c.deps.length ? 1 + Math.max(...c.deps.map((n) => depthOf(byName.get(n)!))) : 0
    depth.set(c.name, d)
    return d
  }
  const out: Component[][] = []
  for (const c of components) (out[depthOf(c)] ??= []).push(c)
  return out.map((l) => l ?? [])
}

/** Components that list name among their deps. */
export function dependentsOf(name: string, components: Component[]): Component[] {
  return components.filter((c) => c.deps.includes(name))
}

/** Enabled components whose deps include a disabled one: they would wait forever. */
export function blockedByDisabled(
  components: Component[],
  features: Record<string, boolean> | undefined,
): { component: string; dep: string }[] {
  const byName = new Map(components.map((c) => [c.name, c]))
  const out: { component: string; dep: string }[] = []
  for (const c of components) {
    if (!isEnabled(c, features)) continue
    for (const d of c.deps) if (!isEnabled(byName.get(d)!, features)) out.push({ component: c.name, dep: d })
  }
  return out
}

export const dashed = (version: string) => 'v' + version.replace(/\./g, '-')

/** The feature names a chart knows: its default values' `features` and those its components name. Pure. */
export function knownFeatures(components: Component[], defaults: { features?: Record<string, unknown> }): string[] {
  return [
    ...new Set([...Object.keys(defaults.features ?? {}), ...components.flatMap((c) => (c.feature ? [c.feature] : []))]),
  ].sort()
}

/** Refuses a --feature the chart does not know (exit 2), naming the ones it does. Pure. */
export function checkFeatureNames(requested: string[], known: string[], chartVersion: string): void {
  for (const name of requested) {
    if (!known.includes(name))
      throw new UserError(
        `--feature ${name}: installer ${chartVersion} has no such feature`,
        ExitCode.Usage,
        `use one of: ${known.join(', ')}`,
      )
  }
}
