// Resolving the installer chart and rendering it in bootstrap mode (`helm template`), which also checks
// the user's values against the chart's values.schema.json, then reading the three keys of the
// installer-self-cr ConfigMap that the post-install hook would apply (contract section 1).
import { existsSync } from 'node:fs'
import semver from 'semver'
import { parse, parseAllDocuments } from 'yaml'
import { ExitCode, UserError } from '../platform/errors.js'
import { type Helm, HelmError } from './helm.js'
import type { KObj } from '../platform/kobj.js'
import { SELF_CR_CONFIGMAP } from './observe.js'

export const BOOTSTRAP_RELEASE = 'krateo'
export const DEFAULT_CHART = 'oci://ghcr.io/braghettos/charts/installer'
/** Where the installer chart is published from 0.2.54 on (the chart repository's release workflow, contract section 0). */
export const NEWER_CHART = 'oci://ghcr.io/braghettos/krateo/installer'

/** The default chart location for a version: the seed-era path up to 0.2.53, the newer registry path after. Pure. */
export function defaultChartFor(version: string | undefined): string {
  const v = semver.coerce(version ?? '')
  return v && semver.gt(v, '0.2.53') ? NEWER_CHART : DEFAULT_CHART
}
export const DEFAULT_VERSION = '0.2.53'

/** The installer chart's official locations: the only ones upgrade takes from the cluster without being told. */
export function isOfficialChart(chart: string | undefined): boolean {
  return chart === DEFAULT_CHART || chart === NEWER_CHART
}

export interface ChartSource {
  chart: string
  version?: string
}

export interface UserValues {
  files: string[]
  sets: string[]
  /**
   * Values the CLI derives from its own flags, as path -> value: passed with --set-json (a JSON value is
   * never split on commas or unescaped), so a username with a comma or a backslash reaches the chart intact.
   */
  derived?: Record<string, string | number | boolean>
  /** Values YAML read from the running release: fed to helm on stdin (`-f -`) before the files, never written to disk. */
  previous?: string
}

export interface SelfCR {
  compositionDefinition: KObj
  installer: KObj
  componentsPatch: { spec: { components: unknown[]; componentValues: unknown } }
}

export interface RenderedBootstrap {
  chartVersion: string
  manifests: KObj[]
  selfCR: SelfCR
}

export function isLocalChart(chart: string): boolean {
  return !chart.startsWith('oci://') && !/^https?:\/\//.test(chart)
}

/** helm arguments for the chart reference, its version and the user's values. */
export function chartArgs(src: ChartSource, values: UserValues, helm: Helm): string[] {
  // helm reads a positional argument that starts with "-" as a flag.
  if (src.chart.startsWith('-'))
    throw new UserError(
      `"${src.chart}" is not a chart reference`,
      ExitCode.Usage,
      'pass an oci:// reference, a directory or a .tgz',
    )
  const local = isLocalChart(src.chart)
  return [
    src.chart,
    ...(src.version && !local ? ['--version', src.version] : []),
    ...(values.previous !== undefined ? ['-f', '-'] : []),
    ...values.files.flatMap((f) => ['-f', f]),
    ...Object.entries(values.derived ?? {}).flatMap(([path, value]) => [
      '--set-json',
      `${path}=${JSON.stringify(value)}`,
    ]),
    ...values.sets.flatMap((s) => ['--set', s]),
    ...(local ? [] : helm.registryArgs()),
  ]
}

export function checkValuesFiles(values: UserValues): void {
  for (const f of values.files) {
    if (!existsSync(f))
      throw new UserError(`values file ${f} does not exist`, ExitCode.Usage, 'pass an existing file with -f/--values')
  }
}

/** What helm says when a chart cannot be rendered, each with the line a user acts on; the first match wins. */
const CHART_FAILURES: { test: RegExp; error: (msg: string, m: RegExpExecArray, src: ChartSource) => UserError }[] = [
  {
    test: /values don't meet the specifications of the schema|schema\(s\)/i,
    error: (msg) => {
      const detail = msg
        .replace(/^.*specifications of the schema\(s\) in the following chart\(s\):\s*/i, '')
        .replace(/^\S+:\s*-\s*/, '')
        .replace(/\s+/g, ' ')
        .trim()
      return new UserError(
        `the values are rejected by the installer chart's values.schema.json: ${detail}`,
        ExitCode.Chart,
        'fix the --set/-f/--feature values',
      )
    },
  },
  {
    test: /no matches for kind "([^"]+)"|resource mapping not found for name: .*? namespace: .*? from "": no matches for kind "([^"]+)"/,
    error: (_msg, m) =>
      new UserError(
        `the installer chart needs kind ${m[1] ?? m[2]}, which this cluster does not serve`,
        ExitCode.Chart,
        'the chart needs a newer Kubernetes (newer charts need 1.36+ for MutatingAdmissionPolicy), or pick an older --version',
      ),
  },
  // Before "not found": a registry that wants a login says "basic credential not found" or 401.
  {
    test: /basic credential not found|401 Unauthorized|unauthorized: authentication required|authentication required/i,
    error: (msg, _m, src) =>
      new UserError(
        `the registry ${src.chart.replace(/^oci:\/\//, '').split('/')[0]} needs a login to give the installer chart (${msg.replace(/\s+/g, ' ').slice(0, 200)})`,
        ExitCode.Chart,
        'pass --registry-username and the password on stdin with --registry-password-stdin',
      ),
  },
  {
    test: /not found|no such file|failed to (fetch|do request|download)|connection refused|no such host|unable to locate|invalid_reference|manifest unknown/i,
    error: (msg, _m, src) =>
      new UserError(
        `the installer chart ${src.chart}${src.version ? ` version ${src.version}` : ''} cannot be resolved: ${msg}`,
        ExitCode.Chart,
        'check --chart/--version and the registry options (--plain-http, --ca-file)',
      ),
  },
  {
    test: /parse error|unable to parse|error converting YAML|invalid value|key .* has no value/i,
    error: (msg) =>
      new UserError(
        `the values cannot be parsed: ${msg}`,
        ExitCode.Usage,
        'check the --set syntax (helm semantics) and the -f files',
      ),
  },
]

export function helmChartFailure(err: unknown, src: ChartSource): UserError {
  const msg = err instanceof HelmError ? err.message : (err as Error).message
  for (const rule of CHART_FAILURES) {
    const m = rule.test.exec(msg)
    if (m) return rule.error(msg, m, src)
  }
  return new UserError(
    `rendering the installer chart failed: ${msg}`,
    ExitCode.Chart,
    'check the chart and values; --verbose shows the helm command',
  )
}

/** Renders the chart in bootstrap mode and returns its objects and the installer-self-cr contents. */
export async function renderBootstrap(
  helm: Helm,
  src: ChartSource,
  values: UserValues,
  namespace: string,
): Promise<RenderedBootstrap> {
  let out: string
  try {
    out = await helm.run(
      [
        'template',
        BOOTSTRAP_RELEASE,
        ...chartArgs(src, values, helm),
        '-n',
        namespace,
        '--set',
        'bootstrap.coreProvider.enabled=true',
        '--include-crds',
      ],
      { input: values.previous },
    )
  } catch (err) {
    throw helmChartFailure(err, src)
  }
  const manifests = parseAllDocuments(out)
    .map((d) => d.toJS() as KObj | null)
    .filter((d): d is KObj => !!d && !!d.kind)
  const cm = manifests.find((m) => m.kind === 'ConfigMap' && m.metadata.name === SELF_CR_CONFIGMAP) as
    (KObj & { data?: Record<string, string> }) | undefined
  if (!cm?.data)
    throw new UserError(
      `the chart ${src.chart} renders no ${SELF_CR_CONFIGMAP} ConfigMap in bootstrap mode`,
      ExitCode.Chart,
      'pass a Krateo installer chart with --chart',
    )
  const selfCR: SelfCR = {
    compositionDefinition: parse(cm.data['compositiondefinition.yaml'] ?? '') as KObj,
    installer: parse(cm.data['installer.yaml'] ?? '') as KObj,
    componentsPatch: JSON.parse(cm.data['components-patch.json'] ?? '{}') as SelfCR['componentsPatch'],
  }
  if (!selfCR.compositionDefinition?.spec || !selfCR.installer?.spec) {
    throw new UserError(
      `the ${SELF_CR_CONFIGMAP} ConfigMap of ${src.chart} lacks compositiondefinition.yaml or installer.yaml`,
      ExitCode.Chart,
      'pass a Krateo installer chart with --chart',
    )
  }
  const chartVersion = String(
    (selfCR.compositionDefinition.spec as { chart?: { version?: string } }).chart?.version ?? src.version ?? '',
  )
  return { chartVersion, manifests, selfCR }
}

/** A user --set may not move the chart to another namespace than -n: the CLI watches and writes -n. */
export function checkNamespaceSets(sets: string[], namespace: string): void {
  for (const s of sets) {
    for (const part of s.split(/(?<!\\),/)) {
      const m = /^namespaces\.krateo=(.*)$/.exec(part.trim())
      if (m && m[1] !== namespace)
        throw new UserError(
          `--set namespaces.krateo=${m[1]} differs from -n ${namespace}`,
          ExitCode.Usage,
          `pass -n ${m[1]} instead (the CLI installs into, watches and writes -n)`,
        )
    }
  }
}

/** The chart's own default values (`helm show values`): what a flag may name, before anything is rendered with it. */
export async function chartDefaults(helm: Helm, src: ChartSource): Promise<Record<string, unknown>> {
  const local = isLocalChart(src.chart)
  try {
    const out = await helm.run([
      'show',
      'values',
      src.chart,
      ...(src.version && !local ? ['--version', src.version] : []),
      ...(local ? [] : helm.registryArgs()),
    ])
    return (parse(out) as Record<string, unknown> | null) ?? {}
  } catch (err) {
    throw helmChartFailure(err, src)
  }
}

/** Kubernetes version a rendered bootstrap needs: a MutatingAdmissionPolicy (Gen N charts) is served from 1.36. Pure. */
export function requiredKubernetes(manifests: KObj[]): { minor: number; why: string } | null {
  const map = manifests.find((m) => m.kind === 'MutatingAdmissionPolicy' || m.kind === 'MutatingAdmissionPolicyBinding')
  return map ? { minor: 36, why: `it ships a ${map.kind} (${map.apiVersion})` } : null
}

/** Refuses a chart the cluster is too old for, with one line (instead of a helm error after the first write). */
export function checkKubernetesFor(manifests: KObj[], serverVersion: string, chartVersion: string): void {
  const need = requiredKubernetes(manifests)
  const minor = Number(/^v?1\.(\d+)/.exec(serverVersion)?.[1] ?? NaN)
  if (need && Number.isFinite(minor) && minor < need.minor) {
    throw new UserError(
      `installer ${chartVersion} needs Kubernetes 1.${need.minor} or newer (${need.why}); this cluster runs ${serverVersion}`,
      ExitCode.Chart,
      'upgrade the cluster, or install an older installer with --version',
    )
  }
}
