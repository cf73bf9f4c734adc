// Conventions users bring from kubectl and helm: how a kubeconfig is found and merged, which engine runs,
// which feature names a chart knows, and how check reports.
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { describe, it } from 'node:test'
import { stringify } from 'yaml'
import { HttpMethod, RequestContext } from '@kubernetes/client-node'
import { PooledKubeConfig, loadKubeConfig } from '../../src/cluster/kubeconfig.js'
import { generationFrom } from '../../src/cluster/engine.js'
import { checkFeatureNames, knownFeatures } from '../../src/platform/components.js'
import { renderChecks, runChecks } from '../../src/operations/check.js'
import { UserError } from '../../src/platform/errors.js'
import { checkKubernetesFor, defaultChartFor, helmChartFailure } from '../../src/cluster/chart.js'
import { scratchDir } from '../helpers/scratch.js'

const dir = scratchDir('kubeconfig-test-')
function kubeconfig(name: string, current: string | null, contexts: [string, string][]): string {
  const path = join(dir, name)
  writeFileSync(
    path,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      ...(current ? { 'current-context': current } : {}),
      clusters: contexts.map(([ctx, server]) => ({ name: ctx, cluster: { server } })),
      users: contexts.map(([ctx]) => ({ name: ctx, user: { token: 'x' } })),
      contexts: contexts.map(([ctx]) => ({ name: ctx, context: { cluster: ctx, user: ctx } })),
    }),
  )
  return path
}

describe('kubeconfig, as kubectl loads it', () => {
  it('merges every file of KUBECONFIG: missing ones skipped, the first current-context and the first of a duplicate name win', () => {
    const a = kubeconfig('a', null, [['dev', 'https://127.0.0.1:1001']])
    const b = kubeconfig('b', 'prod', [
      ['prod', 'https://127.0.0.1:1002'],
      ['dev', 'https://127.0.0.1:9999'],
    ])
    const c = kubeconfig('c', 'dev', [])
    const kc = loadKubeConfig({ env: [join(dir, 'missing'), a, b, c].join(delimiter) })
    assert.equal(kc.getCurrentContext(), 'prod', 'the first file that sets current-context wins (a sets none)')
    assert.equal(
      kc.getCluster('dev')?.server,
      'https://127.0.0.1:1001',
      'the first definition of a name wins; no "duplicate" error',
    )
    assert.deepEqual(
      kc
        .getContexts()
        .map((x) => x.name)
        .sort(),
      ['dev', 'prod'],
    )
  })
  it('says so when there is no kubeconfig at all, or --kubeconfig names a missing file', () => {
    assert.throws(
      () => loadKubeConfig({ env: join(dir, 'nope'), inCluster: false }),
      (e: UserError) => e.exitCode === 3 && /none of the files in \$KUBECONFIG exists/.test(e.message),
    )
    assert.throws(
      () => loadKubeConfig({ home: join(dir, 'nohome'), inCluster: false }),
      /no kubeconfig: \$KUBECONFIG is not set and ~\/\.kube\/config does not exist/,
    )
    assert.throws(() => loadKubeConfig({ kubeconfig: join(dir, 'nope') }), /kubeconfig .* does not exist/)
  })
})

describe('engine generation', () => {
  it("is S with core-provider's webhook, N with a MutatingAdmissionPolicy for compositions, unknown otherwise", () => {
    assert.equal(generationFrom([{ webhooks: [{ name: 'core.provider.krateo.io' }] }], []), 'S')
    assert.equal(
      generationFrom(
        [],
        [{ spec: { matchConstraints: { resourceRules: [{ apiGroups: ['composition.krateo.io'] }] } } }],
      ),
      'N',
    )
    assert.equal(generationFrom([{ webhooks: [{ name: 'other.example.com' }] }], []), 'unknown')
  })
})

describe('feature names', () => {
  it('knows the chart default features and those its components name, and refuses the rest with the known ones', () => {
    const known = knownFeatures([{ name: 'kagent', kind: 'Kagent', version: '1', deps: [], feature: 'agents' }], {
      features: { platform: true, portal: true },
    })
    assert.deepEqual(known, ['agents', 'platform', 'portal'])
    assert.throws(
      () => checkFeatureNames(['nosuch'], known, '0.2.53'),
      (e: UserError) =>
        e.exitCode === 2 &&
        e.line() === '--feature nosuch: installer 0.2.53 has no such feature; use one of: agents, platform, portal',
    )
    checkFeatureNames(['agents'], known, '0.2.53')
  })
})

describe('check', () => {
  it('runs every check, skips those whose need failed, and gives each failure its hint', async () => {
    const results = await runChecks(
      [
        { name: 'a', run: async () => 'fine' },
        {
          name: 'b',
          run: async () => {
            throw new UserError('broken', 10, 'fix b')
          },
        },
        { name: 'c', run: async () => 'never' },
        { name: 'd', run: async () => 'also fine' },
      ],
      { c: 'b' },
    )
    assert.deepEqual(
      results.map((r) => [r.name, r.ok, !!r.skipped]),
      [
        ['a', true, false],
        ['b', false, false],
        ['c', false, true],
        ['d', true, false],
      ],
    )
    assert.equal(
      renderChecks(results),
      '✔ a: fine\n✖ b: broken\n    hint: fix b\n- c: skipped: needs "b"\n✔ d: also fine',
    )
  })
})

describe('chart requirements', () => {
  it('refuses a chart that ships a MutatingAdmissionPolicy on a cluster older than 1.36, naming both', () => {
    const gen = [
      {
        apiVersion: 'admissionregistration.k8s.io/v1beta1',
        kind: 'MutatingAdmissionPolicy',
        metadata: { name: 'compositions-version' },
      },
    ]
    assert.throws(
      () => checkKubernetesFor(gen, 'v1.35.4', '0.3.0'),
      (e: UserError) =>
        e.exitCode === 8 &&
        e.line() ===
          'installer 0.3.0 needs Kubernetes 1.36 or newer (it ships a MutatingAdmissionPolicy (admissionregistration.k8s.io/v1beta1)); this cluster runs v1.35.4; upgrade the cluster, or install an older installer with --version',
    )
    checkKubernetesFor(gen, 'v1.36.1', '0.3.0')
    checkKubernetesFor([], 'v1.30.0', '0.2.53')
  })
  it('defaults the chart location by version: the seed path up to 0.2.53, the newer registry path after', () => {
    assert.equal(defaultChartFor('0.2.53'), 'oci://ghcr.io/braghettos/charts/installer')
    assert.equal(defaultChartFor('0.2.145'), 'oci://ghcr.io/braghettos/krateo/installer')
    assert.equal(defaultChartFor('v0.3.0-rc.1'), 'oci://ghcr.io/braghettos/krateo/installer')
  })
  it('names a kind helm cannot map instead of calling the chart unresolvable', () => {
    const err = helmChartFailure(
      new Error(
        'unable to build kubernetes objects from release manifest: resource mapping not found for name: "x" namespace: "" from "": no matches for kind "MutatingAdmissionPolicy" in version "admissionregistration.k8s.io/v1beta1"',
      ),
      { chart: 'oci://r/installer' },
    )
    assert.match(
      err.line(),
      /^the installer chart needs kind MutatingAdmissionPolicy, which this cluster does not serve; /,
    )
  })
})

describe('API connections', () => {
  const configFor = (token: string) => {
    const kc = new PooledKubeConfig()
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: 'https://127.0.0.1:6443', skipTLSVerify: false }],
      users: [{ name: 'u', token }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    })
    return kc
  }
  const agentOf = async (kc: PooledKubeConfig) => {
    const context = new RequestContext('https://127.0.0.1:6443/api', HttpMethod.GET)
    await kc.applySecurityAuthentication(context)
    return context.getAgent() as { keepAlive?: boolean } | undefined
  }

  it('requests with the same credentials share one keep-alive agent (one TLS set-up, not one per request)', async () => {
    const kc = configFor('a')
    const first = await agentOf(kc)
    assert.ok(first?.keepAlive, 'keep-alive')
    assert.equal(await agentOf(kc), first)
    assert.equal(await agentOf(configFor('a')), first, 'a second client of the same cluster and user too')
  })
})
