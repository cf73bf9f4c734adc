// The ownership rule: what uninstall, --purge and --force may touch. Each case is a user's object that
// looks like the platform's, and must be left alone.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { stringify } from 'yaml'
import {
  bootstrapReleaseOf,
  isPlatformDefinition,
  isPlatformPolicy,
  isPlatformWebhook,
  platformComponents,
  recordedVerdict,
  restCrdsOf,
  healableStuckCreates,
  chartInspectorMisses,
  crdServesKind,
} from '../../src/platform/ownership.js'
import { bindsOurServiceAccount, bundleObjects } from '../../src/platform/bundle.js'
import {
  foreignInNamespace,
  foreignInstances,
  isClaimOf,
  unreadableWithoutCoreProvider,
} from '../../src/platform/foreign.js'
import { platformInventory, platformPresent } from '../../src/operations/inventory.js'
import { ExitCode } from '../../src/platform/errors.js'
import { drainWaves } from '../../src/platform/drain.js'
import { changedSinceConfirmed, drainable } from '../../src/operations/uninstall.js'
import { uninstallPlanDocument, uninstallPlanText } from '../../src/operations/uninstall-plan.js'
import { emptyRecord, mergeRecord, parseRecord } from '../../src/cluster/teardown-record.js'
import { holderGone } from '../../src/cluster/lock.js'
import { lockHolder, lockState, microTime } from '../../src/platform/lease.js'
import type { KObj } from '../../src/platform/kobj.js'
import type { Observed } from '../../src/platform/objects.js'

const labelled = { 'app.kubernetes.io/managed-by': 'krateo-installer' }
const cd = (
  name: string,
  labels: Record<string, string> = labelled,
  resource = `${name.replace(/-/g, '')}s`,
): KObj => ({ metadata: { name, labels }, spec: {}, status: { resource, apiVersion: 'composition.krateo.io/v1-0-0' } })
const installer: KObj = {
  metadata: { name: 'installer' },
  spec: {
    components: [
      { name: 'authn', kind: 'Authn', version: '1.0.0' },
      { name: 'portal', kind: 'Portal', version: '1.0.0', deps: ['authn'] },
    ],
  },
}

function observed(over: Partial<Observed> = {}): Observed {
  return {
    namespace: 'krateo-system',
    cdCrd: true,
    bootstrapped: true,
    selfCr: { metadata: { name: 'installer-self-cr', annotations: { 'meta.helm.sh/release-name': 'installer' } } },
    installer,
    cds: new Map(
      [cd('installer'), cd('authn'), cd('portal'), cd('fireworksapp', {}), cd('lookalike')].map((c) => [
        c.metadata.name,
        c,
      ]),
    ),
    crds: new Map(),
    compositions: new Map(),
    services: [],
    now: 0,
    ...over,
  }
}

describe('ownership', () => {
  it("counts a CompositionDefinition as the platform's only with the chart's label AND a name from its component list", () => {
    const names = new Set(['authn', 'portal'])
    assert.equal(isPlatformDefinition(cd('authn'), names), true)
    assert.equal(isPlatformDefinition(cd('installer'), names), true)
    assert.equal(isPlatformDefinition(cd('fireworksapp', {}), names), false, 'a user blueprint without the label')
    assert.equal(isPlatformDefinition(cd('lookalike'), names), false, 'a user blueprint that copied the label')
    assert.equal(
      isPlatformDefinition(cd('authn', {}), names),
      false,
      'a user CD that happens to share a component name',
    )
  })

  it("heals a lost create result only on the platform's objects, never on a user's blueprint or its Composition (N19)", () => {
    const stuck = (o: KObj): KObj => ({
      ...o,
      metadata: { ...o.metadata, annotations: { 'krateo.io/external-create-pending': '2026-01-01T00:00:00Z' } },
      status: {
        ...o.status,
        conditions: [{ type: 'Synced', status: 'False', message: 'cannot determine creation result' }],
      },
    })
    const comp = (name: string): KObj => stuck({ metadata: { name } })
    const o = observed({
      cds: new Map([cd('authn'), cd('fireworksapp', {}), cd('lookalike')].map((c) => [c.metadata.name, stuck(c)])),
      compositions: new Map(['authn', 'fireworksapp', 'lookalike'].map((n) => [n, comp(n)])),
    })
    assert.deepEqual(
      healableStuckCreates(o).map((t) => `${t.plural}/${t.obj.metadata.name}`),
      ['compositiondefinitions/authn', 'authns/authn'],
    )
  })

  it("names the kinds chart-inspector could not map, from the platform's Compositions only, and whether a CRD serves them", () => {
    // The cdc's words, chart-inspector's JSON answer inside (its quotes escaped), as 0.20.2 reports them.
    const body = JSON.stringify({
      kind: 'Status',
      message:
        'unable to build kubernetes objects from release manifest: resource mapping not found for name: "hyperdx" namespace: "" from "": no matches for kind "RestDefinition" in version "ogen.krateo.io/v1alpha1"\nensure CRDs are installed first',
    })
    const failed = (name: string, message: string): KObj => ({
      metadata: { name },
      status: {
        conditions: [
          { type: 'Ready', status: 'False' },
          { type: 'Synced', status: 'False', message },
        ],
      },
    })
    const viaInspector = `create failed: generating RBAC using chart-inspector: getting resources from chart-inspector: unexpected status code: 500 - response body: ${body}`
    const o = observed({
      cds: new Map([cd('authn'), cd('portal'), cd('fireworksapp', {})].map((c) => [c.metadata.name, c])),
      compositions: new Map(
        [
          failed('authn', viaInspector),
          failed('fireworksapp', viaInspector),
          failed(
            'portal',
            'create failed: no matches for kind "Page" in version "widgets.templates.krateo.io/v1beta1"',
          ),
        ].map((c) => [c.metadata.name, c]),
      ),
    })
    assert.deepEqual(
      chartInspectorMisses(o).map((m) => [m.plural, m.obj.metadata.name, m.group, m.version, m.kind]),
      [['authns', 'authn', 'ogen.krateo.io', 'v1alpha1', 'RestDefinition']],
      "a user's Composition is theirs; a failure that did not come from chart-inspector is not its miss",
    )
    const crd = (established: string, served = true): KObj => ({
      metadata: { name: 'restdefinitions.ogen.krateo.io' },
      spec: { group: 'ogen.krateo.io', names: { kind: 'RestDefinition' }, versions: [{ name: 'v1alpha1', served }] },
      status: { conditions: [{ type: 'Established', status: established }] },
    })
    assert.equal(crdServesKind(crd('True'), 'ogen.krateo.io', 'RestDefinition', 'v1alpha1'), true)
    assert.equal(crdServesKind(crd('False'), 'ogen.krateo.io', 'RestDefinition', 'v1alpha1'), false, 'not established')
    assert.equal(crdServesKind(crd('True', false), 'ogen.krateo.io', 'RestDefinition', 'v1alpha1'), false)
    assert.equal(crdServesKind(crd('True'), 'ogen.krateo.io', 'RestDefinition', 'v1'), false, 'another version')
  })

  it("counts a definition the installer cdc's helm release rendered (helm relabels it managed-by Helm) as the platform's", () => {
    const names = new Set(['authn'])
    const inst: KObj = { metadata: { name: 'installer', uid: '0123abcd-0000' } }
    const rendered = (release: string, ns = 'krateo-system'): KObj => ({
      metadata: {
        name: 'authn',
        namespace: 'krateo-system',
        labels: { 'app.kubernetes.io/managed-by': 'Helm' },
        annotations: { 'meta.helm.sh/release-name': release, 'meta.helm.sh/release-namespace': ns },
      },
    })
    assert.equal(isPlatformDefinition(rendered('installer-0123abcd'), names, inst), true)
    assert.equal(
      isPlatformDefinition(rendered('installer-0123abcd'), names, {
        metadata: { name: 'installer', labels: { 'krateo.io/release-name': 'installer-custom' } },
      }),
      false,
      "the cdc's own release label wins",
    )
    assert.equal(
      isPlatformDefinition(rendered('my-blueprints'), names, inst),
      false,
      'another helm release of the user',
    )
    assert.equal(
      isPlatformDefinition(rendered('installer-0123abcd', 'team-a'), names, inst),
      false,
      'a release of another namespace',
    )
    assert.equal(isPlatformDefinition(rendered('installer-0123abcd'), names, null), false, 'no Installer, no proof')
  })

  it("finds the component list from the Installer, else from the bootstrap release's installer-self-cr", () => {
    assert.deepEqual(
      platformComponents(installer, null).map((c) => c.name),
      ['authn', 'portal'],
    )
    const selfCr = {
      metadata: { name: 'installer-self-cr' },
      data: {
        'installer.yaml': stringify({
          spec: { components: [{ name: 'authn', kind: 'Authn', version: '1.0.0' }, { name: 'bad' }] },
        }),
      },
    } as unknown as KObj
    assert.deepEqual(
      platformComponents(null, selfCr).map((c) => c.name),
      ['authn'],
      'a malformed entry never widens what is ours',
    )
    assert.deepEqual(platformComponents(null, null), [])
  })

  it("finds the bootstrap release from helm's annotation, whatever its name", () => {
    assert.equal(
      bootstrapReleaseOf({
        metadata: { name: 'installer-self-cr', annotations: { 'meta.helm.sh/release-name': 'installer' } },
      }),
      'installer',
    )
    assert.equal(bootstrapReleaseOf(null), null)
  })

  it("matches only this platform's core-provider webhook", () => {
    const hook = (name: string, service?: { namespace: string }) => ({
      metadata: { name },
      webhooks: [
        { name: 'core.provider.krateo.io', clientConfig: service ? { service } : { url: 'https://127.0.0.1' } },
      ],
    })
    const ours = new Set(['krateo'])
    assert.equal(
      isPlatformWebhook(hook('krateo'), 'krateo-system', ours),
      true,
      "named after our release's core-provider",
    )
    assert.equal(
      isPlatformWebhook(hook('x', { namespace: 'krateo-system' }), 'krateo-system', ours),
      true,
      'calls a Service in our namespace',
    )
    assert.equal(
      isPlatformWebhook(hook('other', { namespace: 'team-b' }), 'krateo-system', ours),
      false,
      "another platform's",
    )
    assert.equal(isPlatformWebhook(hook('other'), 'krateo-system', ours), false)
    assert.equal(
      isPlatformWebhook(hook('krateo', { namespace: 'team-b' }), 'krateo-system', ours),
      false,
      'named like one of ours (a Deployment a tenant made can add names), but calling a Service elsewhere',
    )
    assert.equal(
      isPlatformWebhook(
        { metadata: { name: 'krateo' }, webhooks: [{ name: 'policy.example.com' }] },
        'krateo-system',
        ours,
      ),
      false,
      'not a core-provider webhook at all',
    )
  })

  it("deletes a bundle's ClusterRoleBinding only when it binds our ServiceAccount", () => {
    assert.equal(
      bindsOurServiceAccount(
        { subjects: [{ kind: 'ServiceAccount', name: 'authns-v1-0-0', namespace: 'krateo-system' }] },
        'authns-v1-0-0',
        'krateo-system',
      ),
      true,
    )
    assert.equal(
      bindsOurServiceAccount(
        { subjects: [{ kind: 'ServiceAccount', name: 'authns-v1-0-0', namespace: 'team-b' }] },
        'authns-v1-0-0',
        'krateo-system',
      ),
      false,
    )
    assert.equal(bindsOurServiceAccount(null, 'x', 'y'), false)
  })

  it("names a bundle's objects as core-provider does, the binding before the role it proves", () => {
    const objects = bundleObjects('authns-v1-0-0', 'krateo-system')
    assert.deepEqual(
      objects.map((o) => `${o.kind}/${o.name}`),
      [
        'Deployment/authns-v1-0-0-controller',
        'Service/authns-v1-0-0-controller-service',
        'ServiceAccount/authns-v1-0-0',
        'Role/authns-v1-0-0',
        'RoleBinding/authns-v1-0-0',
        'Role/authns-v1-0-0-secret',
        'RoleBinding/authns-v1-0-0-secret',
        'ConfigMap/authns-v1-0-0-configmap',
        'ConfigMap/authns-v1-0-0-jsonschema-configmap',
        'ClusterRoleBinding/authns-v1-0-0',
        'ClusterRole/authns-v1-0-0',
      ],
    )
    assert.equal(objects[0]!.path, '/apis/apps/v1/namespaces/krateo-system/deployments/authns-v1-0-0-controller')
    assert.deepEqual(
      objects.filter((o) => o.clusterWide).map((o) => o.path),
      [
        '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/authns-v1-0-0',
        '/apis/rbac.authorization.k8s.io/v1/clusterroles/authns-v1-0-0',
      ],
    )
  })

  it('finds the CRDs generated from our RestDefinitions by group and kind', () => {
    const crds = [
      {
        metadata: { name: 'dashboards.hyperdx.krateo.io' },
        spec: { group: 'hyperdx.krateo.io', names: { kind: 'Dashboard' } },
      },
      {
        metadata: { name: 'alerts.hyperdx.krateo.io' },
        spec: { group: 'hyperdx.krateo.io', names: { kind: 'Alert' } },
      },
    ]
    assert.deepEqual(
      restCrdsOf([{ spec: { resourceGroup: 'hyperdx.krateo.io', resource: { kind: 'Dashboard' } } }], crds),
      ['dashboards.hyperdx.krateo.io'],
    )
  })

  it("names the users' kinds that convert through the platform's core-provider: unreadable once it is gone", () => {
    const crd = (name: string, kind: string, conversion?: Record<string, unknown>) => ({
      metadata: { name },
      spec: { group: 'composition.krateo.io', names: { kind }, ...(conversion ? { conversion } : {}) },
    })
    const viaService = (namespace: string) => ({
      strategy: 'Webhook',
      webhook: { clientConfig: { service: { namespace, name: 'core-provider-webhook-service' } } },
    })
    const crds = [
      crd('fireworksapps.composition.krateo.io', 'Fireworksapp', viaService('krateo-system')),
      crd('shops.composition.krateo.io', 'Shop', viaService('team-b')),
      crd('carts.composition.krateo.io', 'Cart'),
      crd('authns.composition.krateo.io', 'Authn', viaService('krateo-system')),
      crd('orders.composition.krateo.io', 'Order', {
        strategy: 'Webhook',
        webhook: { clientConfig: { url: 'https://127.0.0.1:9443/convert' } },
      }),
    ]
    assert.deepEqual(
      unreadableWithoutCoreProvider(crds, 'krateo-system', new Set(['authns.composition.krateo.io'])),
      ['Fireworksapp (CRD fireworksapps.composition.krateo.io)', 'Order (CRD orders.composition.krateo.io)'],
      "ours go anyway; another platform's core-provider stays; no webhook, nothing to lose; a URL cannot be told apart",
    )
  })

  it("counts a PVC as ours only when one of our StatefulSets' claim templates made it", () => {
    const sets = [{ name: 'clickhouse', claimTemplates: ['data'] }]
    assert.equal(isClaimOf('data-clickhouse-0', sets), true)
    assert.equal(isClaimOf('data-clickhouse-12', sets), true)
    assert.equal(isClaimOf('data-clickhouse-backup', sets), false)
    assert.equal(isClaimOf('mydata', sets), false)
  })

  it('lists what keeps a namespace from being ours to delete', () => {
    const foreign = foreignInNamespace(
      [
        { kind: 'ConfigMap', name: 'kube-root-ca.crt' },
        { kind: 'ServiceAccount', name: 'default' },
        { kind: 'Lease', name: 'krateo-installer' },
        { kind: 'PersistentVolumeClaim', name: 'data-clickhouse-0' },
        { kind: 'PersistentVolumeClaim', name: 'user-data' },
        { kind: 'Pod', name: 'web-abc', uid: 'p1', owners: [{ kind: 'ReplicaSet', name: 'web-a', uid: 'rs1' }] },
        { kind: 'ReplicaSet', name: 'web-a', uid: 'rs1', owners: [{ kind: 'Deployment', name: 'web', uid: 'd1' }] },
        { kind: 'Deployment', name: 'web', uid: 'd1' },
      ],
      {
        own: { Lease: ['krateo-installer'] },
        pvcs: [{ name: 'clickhouse', claimTemplates: ['data'] }],
      },
    )
    assert.deepEqual(
      foreign.map((o) => `${o.kind}/${o.name}`),
      ['PersistentVolumeClaim/user-data', 'Deployment/web'],
    )
  })

  it('counts an object whose owner is not in the namespace (cluster-scoped, or gone) as not ours', () => {
    const foreign = foreignInNamespace(
      [
        // A connection Secret owned by a cluster-scoped composite resource: its owner proves nothing here.
        { kind: 'Secret', name: 'db-conn', uid: 's1', owners: [{ kind: 'XDatabase', name: 'db', uid: 'x1' }] },
        { kind: 'EndpointSlice', name: 'web-x', uid: 'e1' },
      ],
      { own: {}, pvcs: [] },
    )
    assert.deepEqual(
      foreign.map((o) => `${o.kind}/${o.name}`),
      ['Secret/db-conn'],
    )
  })
})

describe('inventory', () => {
  const input = (over: Partial<Parameters<typeof platformInventory>[0]> = {}) => ({
    obs: observed(),
    release: { name: 'installer', status: 'deployed', chart: 'installer-0.2.53' },
    record: null,
    coreProviders: [
      {
        metadata: {
          name: 'core-provider',
          labels: { 'app.kubernetes.io/name': 'core-provider', 'app.kubernetes.io/instance': 'installer' },
        },
      },
    ] as KObj[],
    webhooks: [
      { metadata: { name: 'installer' }, webhooks: [{ name: 'core.provider.krateo.io' }] },
      {
        metadata: { name: 'team-b-core' },
        webhooks: [{ name: 'core.provider.krateo.io', clientConfig: { service: { namespace: 'team-b' } } }],
      },
    ],
    restCrds: [],
    statefulSets: [],
    registrySecret: true,
    ...over,
  })

  it("records only the platform's definitions, CRDs, bundles and webhook, and names the rest as not ours", () => {
    const inv = platformInventory(input())
    assert.deepEqual(inv.record.definitions, ['authn', 'installer', 'portal'])
    assert.deepEqual(inv.record.crds, [
      'authns.composition.krateo.io',
      'installers.composition.krateo.io',
      'portals.composition.krateo.io',
    ])
    assert.deepEqual(inv.record.bundles, ['authns-v1-0-0', 'installers-v1-0-0', 'portals-v1-0-0'])
    assert.deepEqual(inv.record.webhooks, ['installer'])
    assert.deepEqual(inv.foreignWebhooks, ['team-b-core'])
    assert.deepEqual(
      inv.foreignDefinitions.map((d) => d.metadata.name),
      ['fireworksapp', 'lookalike'],
    )
    assert.deepEqual(inv.coreProviders, ['core-provider'])
    assert.equal(inv.record.release, 'installer')
    assert.deepEqual(inv.record.secrets, ['krateo-registry-auth'])
  })

  it('keeps what an earlier run recorded, so a re-run after helm uninstall still sweeps', () => {
    const earlier = mergeRecord(emptyRecord(), {
      release: 'installer',
      bundles: ['authns-v1-0-0'],
      webhooks: ['installer'],
    })
    const inv = platformInventory(
      input({
        obs: observed({ installer: null, selfCr: null, cds: new Map() }),
        release: null,
        record: earlier,
        coreProviders: [],
        webhooks: [],
      }),
    )
    assert.deepEqual(inv.record.bundles, ['authns-v1-0-0'])
    assert.equal(platformPresent(inv), true, 'the sweep is not complete yet')
    const done = platformInventory(
      input({
        obs: observed({ installer: null, selfCr: null, cds: new Map() }),
        release: null,
        record: mergeRecord(earlier, { completedAt: 'now' }),
        coreProviders: [],
        webhooks: [],
      }),
    )
    assert.equal(platformPresent(done), false)
  })

  it('starts a new record for a platform installed again after a completed uninstall, and records uids', () => {
    const old = mergeRecord(emptyRecord(), {
      release: 'installer',
      definitions: ['gone-component'],
      restCrds: ['widgets.example.com'],
      uids: { 'CompositionDefinition/gone-component': 'u-old' },
      completedAt: 'then',
    })
    const withUids = input()
    for (const c of withUids.obs.cds.values()) c.metadata.uid = `uid-${c.metadata.name}`
    const inv = platformInventory({ ...withUids, record: old })
    assert.ok(!inv.record.definitions.includes('gone-component'), 'nothing of the completed record carries over')
    assert.deepEqual(inv.record.restCrds, [])
    assert.equal(inv.record.uids?.['CompositionDefinition/authn'], 'uid-authn')
    assert.equal(inv.record.uids?.['CompositionDefinition/gone-component'], undefined)
  })

  it("keeps a bundle object's first recorded uid (one replaced since is not ours), unless that record is complete", () => {
    const key = 'ConfigMap/authns-v1-0-0-configmap'
    const running = mergeRecord(emptyRecord(), { release: 'installer', uids: { [key]: 'u-first' } })
    const again = platformInventory(input({ record: running, bundleUids: { [key]: 'u-replaced' } }))
    assert.equal(again.record.uids?.[key], 'u-first')
    const first = platformInventory(input({ bundleUids: { [key]: 'u-first' } }))
    assert.equal(first.record.uids?.[key], 'u-first')
    // Installed again after a completed uninstall: the old uids are the old platform's, the new bundle's count.
    const reinstalled = platformInventory(
      input({ record: mergeRecord(running, { completedAt: 'then' }), bundleUids: { [key]: 'u-new' } }),
    )
    assert.equal(reinstalled.record.uids?.[key], 'u-new')
  })

  it("finds nothing in a namespace where only users' objects live", () => {
    const inv = platformInventory(
      input({
        obs: observed({
          installer: null,
          selfCr: null,
          cds: new Map([cd('fireworksapp', {}), cd('lookalike')].map((c) => [c.metadata.name, c])),
        }),
        release: null,
        coreProviders: [],
        registrySecret: false,
      }),
    )
    assert.equal(platformPresent(inv), false)
    assert.deepEqual(inv.record.definitions, [])
    assert.deepEqual(inv.record.webhooks, [], 'no release of ours, so no webhook is ours')
  })

  it("remembers what each component's release listed, so a re-run waits for what a stopped drain left finalizing", () => {
    const page = {
      apiVersion: 'widgets.templates.krateo.io/v1beta1',
      resource: 'pages',
      name: 'dashboard',
      namespace: 'krateo-system',
    }
    const portal: KObj = {
      apiVersion: 'composition.krateo.io/v1-0-0',
      kind: 'Portal',
      metadata: { name: 'portal' },
      status: { managed: [page] },
    }
    const first = platformInventory(
      input({
        obs: observed({
          compositions: new Map([
            ['portal', portal],
            ['mine', { ...portal, metadata: { name: 'mine' } }],
          ]),
        }),
      }),
    )
    assert.deepEqual(first.record.released, { portal: [page] }, "only the platform's components")
    // The re-run: portal's Composition is gone, its page is still being finalized.
    const rerun = platformInventory(input({ record: first.record, finishing: new Map([['portal', [page]]]) }))
    assert.deepEqual(rerun.record.released, { portal: [page] }, 'not forgotten once the Composition is gone')
    const authn: KObj = { ...portal, kind: 'Authn', metadata: { name: 'authn' }, status: {} }
    const both = { ...rerun, compositions: new Map([['authn', authn]]) }
    assert.deepEqual(
      drainWaves(both.components, drainable(both)),
      [['portal'], ['authn']],
      'authn (which finalizes the page) waits for it',
    )
    assert.match(
      uninstallPlanText(both),
      /wave 1: portal \(Composition gone; waits for pages\/dashboard to be finalized\)\n {2}wave 2: authn/,
    )
    assert.deepEqual(uninstallPlanDocument(both).finishing, { portal: ['pages/dashboard'] })
  })

  it('under the lock, refuses what changed since the question that the question did not cover', () => {
    const confirmed = platformInventory(input())
    assert.equal(changedSinceConfirmed(confirmed, platformInventory(input()), true), null, 'nothing changed')
    const foreign = { ...platformInventory(input()), foreignInstances: ['Authn team-a/theirs'] }
    assert.deepEqual(changedSinceConfirmed(confirmed, foreign, false)?.exit, ExitCode.Stuck)
    assert.match(changedSinceConfirmed(confirmed, foreign, false)!.why, /1 object that is not the platform's/)
    const moved = platformInventory(
      input({ release: { name: 'krateo', status: 'deployed', chart: 'installer-0.2.53' } }),
    )
    assert.match(changedSinceConfirmed(confirmed, moved, false)!.why, /release is now krateo, not installer/)
    const unreadable = { ...platformInventory(input()), unreadableAfter: ['Widget team-a/w (widgets.example.io)'] }
    assert.equal(changedSinceConfirmed(confirmed, unreadable, false), null, '--yes: nothing was shown')
    assert.equal(changedSinceConfirmed(confirmed, unreadable, true)?.exit, ExitCode.Interrupted, 'more than was shown')
    assert.equal(changedSinceConfirmed(unreadable, unreadable, true), null, 'what was shown')
  })

  it('reads back what it wrote, and ignores a damaged record', () => {
    const r = mergeRecord(emptyRecord(new Date(0)), {
      definitions: ['b', 'a', 'a'],
      statefulSets: [{ name: 's', claimTemplates: ['d'] }],
    })
    assert.deepEqual(parseRecord({ 'record.json': JSON.stringify(r) }), r)
    assert.deepEqual(r.definitions, ['a', 'b'])
    assert.equal(parseRecord({ 'record.json': '{' }), null)
  })
})

describe('run lock', () => {
  const lease = (renew: string, seconds = 30) => ({
    metadata: { name: 'krateo-installer', annotations: { 'krateo-installer/command': 'uninstall' } },
    spec: { holderIdentity: 'ci@runner pid 1', leaseDurationSeconds: seconds, acquireTime: renew, renewTime: renew },
  })
  it('is held while renewed, expired after its duration, free without a holder', () => {
    const t = Date.parse('2026-01-01T00:00:00Z')
    assert.equal(lockState(lease('2026-01-01T00:00:00.000000Z'), t + 10_000), 'held')
    assert.equal(lockState(lease('2026-01-01T00:00:00.000000Z'), t + 31_000), 'expired')
    assert.equal(lockState(null, t), 'free')
    // Renewed a minute in this machine's future: the holder's clock runs ahead, its timestamps prove nothing.
    assert.equal(lockState(lease('2026-01-01T00:01:00.000000Z'), t), 'ahead')
    assert.equal(lockState(lease('2026-01-01T00:00:04.000000Z'), t), 'held')
    assert.equal(lockHolder(lease('2026-01-01T00:00:00.000000Z'))?.command, 'uninstall')
  })
  it("lasts as long as its holder declared (client-go's rule), up to five minutes", () => {
    const t = Date.parse('2026-01-01T00:00:00Z')
    assert.equal(lockState(lease('2026-01-01T00:00:00.000000Z', 10), t + 11_000), 'expired')
    assert.equal(lockHolder(lease('2026-01-01T00:00:00.000000Z', 10))?.durationSeconds, 10)
    assert.equal(lockHolder(lease('2026-01-01T00:00:00.000000Z', 86_400))?.durationSeconds, 300)
    assert.equal(lockHolder(lease('2026-01-01T00:00:00.000000Z', 0))?.durationSeconds, 30)
  })
  it('counts a holder of this machine and PID namespace whose process is gone as gone, never one elsewhere', () => {
    assert.equal(
      holderGone('ci@runner pid 42 pidns 4026531836', 'runner', () => false, '4026531836'),
      true,
    )
    assert.equal(
      holderGone('ci@runner pid 42 pidns 4026531836', 'runner', () => true, '4026531836'),
      false,
    )
    assert.equal(
      holderGone('ci@other pid 42 pidns 4026531836', 'runner', () => false, '4026531836'),
      false,
      'another machine: only its lease tells',
    )
    assert.equal(
      holderGone('ci@runner pid 42 pidns 4026532001', 'runner', () => false, '4026531836'),
      false,
      'a container with the same hostname: its pid 42 is not ours to look up',
    )
    assert.equal(
      holderGone('ci@runner pid 42', 'runner', () => false, '4026531836'),
      false,
      'no PID namespace named: not certain',
    )
  })
  it('writes MicroTime with six fractional digits, as the API server parses it', () => {
    assert.equal(microTime(new Date('2026-01-01T00:00:00.123Z')), '2026-01-01T00:00:00.123000Z')
  })
  it("a user's instance of a platform kind is at risk; ours and ones already being deleted are not", () => {
    const items = [
      { kind: 'User', metadata: { name: 'admin', namespace: 'krateo-system' } },
      { kind: 'User', metadata: { name: 'alice', namespace: 'team-a' } },
      {
        kind: 'User',
        metadata: { name: 'drained', namespace: 'krateo-system', deletionTimestamp: '2026-01-01T00:00:00Z' },
      },
    ]
    assert.deepEqual(
      foreignInstances([
        {
          crd: 'users.basic.authn.krateo.io',
          shippedBy: "the platform's authn-crd",
          items,
          ours: new Set(['krateo-system/admin']),
        },
      ]),
      ["User team-a/alice (its CRD users.basic.authn.krateo.io goes with the platform's authn-crd)"],
    )
    assert.deepEqual(
      foreignInstances([
        {
          crd: 'authns.composition.krateo.io',
          shippedBy: "the platform's CompositionDefinition authn",
          items: [],
          ours: new Set(),
          unlisted: 'conversion webhook for composition.krateo.io/v0-22-1 failed: connection refused\nmore',
        },
      ]),
      [
        "every object of authns.composition.krateo.io: the list failed (conversion webhook for composition.krateo.io/v0-22-1 failed: connection refused), so none can be proved the platform's (its CRD goes with the platform's CompositionDefinition authn)",
      ],
      'a kind that cannot be listed is at risk: the proof fails closed',
    )
  })
  it("Gen N's admission policy is ours only when it is our core-provider instance's and covers compositions", () => {
    const policy = (instance: string, groups = ['composition.krateo.io']) => ({
      metadata: {
        name: 'p',
        labels: { 'app.kubernetes.io/name': 'core-provider', 'app.kubernetes.io/instance': instance },
      },
      spec: { matchConstraints: { resourceRules: [{ apiGroups: groups }] } },
    })
    assert.equal(isPlatformPolicy(policy('krateo-core-provider'), new Set(['krateo-core-provider'])), true)
    assert.equal(
      isPlatformPolicy(policy('other-core-provider'), new Set(['krateo-core-provider'])),
      false,
      "another platform's",
    )
    assert.equal(
      isPlatformPolicy(policy('krateo-core-provider', ['apps']), new Set(['krateo-core-provider'])),
      false,
      'not the version stamp',
    )
  })
})

describe('acting on what a record names', () => {
  const live = (uid: string) => ({ metadata: { uid } })
  it('acts on the recorded object, and on another only when it is proved ours now', () => {
    assert.deepEqual(recordedVerdict(live('a'), 'a', false), { act: true, uid: 'a' })
    assert.deepEqual(recordedVerdict(live('b'), 'a', true), { act: true, uid: 'b' })
    const replaced = recordedVerdict(live('b'), 'a', false)
    assert.equal(replaced.act, false)
    assert.match(!replaced.act ? replaced.reason : '', /made again since it was recorded/)
  })
  it('keeps an object recorded without a uid unless it is proved ours, and reports a gone one as gone', () => {
    const unproved = recordedVerdict(live('x'), undefined, false)
    assert.equal(unproved.act, false)
    assert.match(!unproved.act ? unproved.reason : '', /not proved the platform's/)
    assert.deepEqual(recordedVerdict(null, 'a', true), { act: false, gone: true, reason: 'gone' })
  })
})
