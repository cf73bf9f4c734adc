// Proves the sandbox is a real cluster: real controllers finalize, schedule and complete; kwok runs pod
// lifecycle; the LoadBalancer controller hands out documentation-range IPs; RBAC is enforced; helm talks
// to the real OCI registry; kube-apiserver can be restarted under a live client.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { Watch } from '@kubernetes/client-node'
import { eventually, httpCode, kubeFor, useSandbox } from '../helpers/sandbox.js'
import { startSandbox } from '../../sandbox/lib/sandbox.js'
import { processesMentioning } from '../../sandbox/lib/processes.js'
import { scratchDir } from '../helpers/scratch.js'

describe('sandbox control plane', () => {
  const { sandbox, kube } = useSandbox()

  it('creates a namespace and the controller-manager finalizes its deletion', async () => {
    const { core } = kube()
    await core.createNamespace({ body: { metadata: { name: 'ns-lifecycle' } } })
    await core.createNamespacedConfigMap({
      namespace: 'ns-lifecycle',
      body: { metadata: { name: 'x' }, data: { a: 'b' } },
    })
    await core.deleteNamespace({ name: 'ns-lifecycle' })
    const gone = await eventually('namespace deletion', async () => {
      try {
        await core.readNamespace({ name: 'ns-lifecycle' })
        return false
      } catch (err) {
        return httpCode(err) === 404
      }
    })
    assert.equal(gone, true)
  })

  it('makes a Deployment Available on the fake node', async () => {
    const { apps, core } = kube()
    await core.createNamespace({ body: { metadata: { name: 'apps' } } })
    await apps.createNamespacedDeployment({
      namespace: 'apps',
      body: {
        metadata: { name: 'web' },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: 'web' } },
          template: {
            metadata: { labels: { app: 'web' } },
            spec: { containers: [{ name: 'web', image: 'nginx:fake' }] },
          },
        },
      },
    })
    const dep = await eventually('Deployment Available', async () => {
      const d = await apps.readNamespacedDeployment({ name: 'web', namespace: 'apps' })
      return d.status?.conditions?.some((c) => c.type === 'Available' && c.status === 'True') &&
        d.status.readyReplicas === 2
        ? d
        : false
    })
    assert.equal(dep.status?.availableReplicas, 2)
    const pods = await core.listNamespacedPod({ namespace: 'apps', labelSelector: 'app=web' })
    assert.ok(pods.items.every((p) => p.spec?.nodeName === 'kwok-node-0' && p.status?.phase === 'Running'))
  })

  it('runs a Job to completion', async () => {
    const { batch } = kube()
    await batch.createNamespacedJob({
      namespace: 'apps',
      body: {
        metadata: { name: 'once' },
        spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'once', image: 'busybox:fake' }] } } },
      },
    })
    const job = await eventually('Job Complete', async () => {
      const j = await batch.readNamespacedJob({ name: 'once', namespace: 'apps' })
      return j.status?.conditions?.some((c) => c.type === 'Complete' && c.status === 'True') ? j : false
    })
    assert.equal(job.status?.succeeded, 1)
  })

  it('gives a LoadBalancer Service an ingress IP from 198.51.100.0/24 and leaves ClusterIP alone', async () => {
    const { core } = kube()
    const svc = (name: string, type: string) => ({
      metadata: { name },
      spec: { type, selector: { app: 'web' }, ports: [{ port: 8080 }] },
    })
    await core.createNamespacedService({ namespace: 'apps', body: svc('web-lb', 'LoadBalancer') })
    await core.createNamespacedService({ namespace: 'apps', body: svc('web-internal', 'ClusterIP') })
    const ip = await eventually('LoadBalancer ingress', async () => {
      const s = await core.readNamespacedService({ name: 'web-lb', namespace: 'apps' })
      return s.status?.loadBalancer?.ingress?.[0]?.ip
    })
    assert.match(ip, /^198\.51\.100\.\d+$/)
    const internal = await core.readNamespacedService({ name: 'web-internal', namespace: 'apps' })
    assert.equal(internal.status?.loadBalancer?.ingress, undefined)
    const lb = await core.readNamespacedService({ name: 'web-lb', namespace: 'apps' })
    assert.ok(lb.spec?.ports?.[0]?.nodePort, 'a LoadBalancer Service also gets a NodePort')
  })

  it('serves a CRD, keeps a custom object with a finalizer Terminating until the finalizer goes, and deletes the CRD', async () => {
    const { crds, custom } = kube()
    await crds.createCustomResourceDefinition({
      body: {
        metadata: { name: 'widgets.example.krateo.io' },
        spec: {
          group: 'example.krateo.io',
          scope: 'Namespaced',
          names: { kind: 'Widget', plural: 'widgets', singular: 'widget', listKind: 'WidgetList' },
          versions: [
            {
              name: 'v1',
              served: true,
              storage: true,
              schema: { openAPIV3Schema: { type: 'object', x_kubernetes_preserve_unknown_fields: true } },
            },
          ],
        },
      },
    })
    await eventually('CRD Established', async () => {
      const crd = await crds.readCustomResourceDefinition({ name: 'widgets.example.krateo.io' })
      return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')
    })
    const ref = { group: 'example.krateo.io', version: 'v1', namespace: 'apps', plural: 'widgets' }
    await eventually('CRD served', async () => {
      await custom.createNamespacedCustomObject({
        ...ref,
        body: {
          apiVersion: 'example.krateo.io/v1',
          kind: 'Widget',
          metadata: { name: 'w1', finalizers: ['example.krateo.io/hold'] },
        },
      })
      return true
    })
    await custom.deleteNamespacedCustomObject({ ...ref, name: 'w1' })
    await new Promise((r) => setTimeout(r, 1500))
    const held = (await custom.getNamespacedCustomObject({ ...ref, name: 'w1' })) as {
      metadata: { deletionTimestamp?: string }
    }
    assert.ok(held.metadata.deletionTimestamp, 'the object is Terminating while the finalizer is present')
    await custom.patchNamespacedCustomObject({
      ...ref,
      name: 'w1',
      body: [{ op: 'remove', path: '/metadata/finalizers' }],
    })
    await eventually('object gone after the finalizer is removed', async () => {
      try {
        await custom.getNamespacedCustomObject({ ...ref, name: 'w1' })
        return false
      } catch (err) {
        return httpCode(err) === 404
      }
    })
    await crds.deleteCustomResourceDefinition({ name: 'widgets.example.krateo.io' })
    await eventually('CRD deleted', async () => {
      try {
        await crds.readCustomResourceDefinition({ name: 'widgets.example.krateo.io' })
        return false
      } catch (err) {
        return httpCode(err) === 404
      }
    })
  })

  it('pushes a chart to the OCI registry, installs it from oci:// with helm and uninstalls it', async () => {
    const sb = sandbox()
    const work = scratchDir('chart-')
    const chart = join(work, 'hello')
    mkdirSync(join(chart, 'templates'), { recursive: true })
    writeFileSync(join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: hello\nversion: 0.1.0\n')
    writeFileSync(
      join(chart, 'templates', 'deploy.yaml'),
      [
        'apiVersion: apps/v1',
        'kind: Deployment',
        'metadata: { name: hello }',
        'spec: { selector: { matchLabels: { app: hello } }, template: { metadata: { labels: { app: hello } }, spec: { containers: [{ name: hello, image: "hello:fake" }] } } }',
      ].join('\n'),
    )
    const helm = (...args: string[]) =>
      execFileSync(sb.helm, args, { env: { ...process.env, ...sb.helmEnv() }, cwd: work }).toString()
    helm('package', chart, '-d', work)
    helm('push', join(work, 'hello-0.1.0.tgz'), `oci://${sb.registry}/charts`, '--plain-http')
    helm(
      'install',
      'hello',
      `oci://${sb.registry}/charts/hello`,
      '--version',
      '0.1.0',
      '--plain-http',
      '-n',
      'helm-test',
      '--create-namespace',
      '--wait',
      '--timeout',
      '60s',
    )
    const listed = JSON.parse(helm('list', '-n', 'helm-test', '-o', 'json')) as { name: string; status: string }[]
    assert.deepEqual(
      listed.map((r) => [r.name, r.status]),
      [['hello', 'deployed']],
    )
    const dep = await kube().apps.readNamespacedDeployment({ name: 'hello', namespace: 'helm-test' })
    assert.equal(dep.status?.availableReplicas, 1)
    helm('uninstall', 'hello', '-n', 'helm-test', '--wait')
    assert.deepEqual(JSON.parse(helm('list', '-n', 'helm-test', '-o', 'json')), [])
  })

  it('refuses a restricted user and a ServiceAccount what RBAC forbids, and allows what it grants', async () => {
    const sb = sandbox()
    const { rbac, core } = kube()
    await core.createNamespace({ body: { metadata: { name: 'rbac-test' } } })
    await rbac.createNamespacedRole({
      namespace: 'rbac-test',
      body: {
        metadata: { name: 'cm-reader' },
        rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list'] }],
      },
    })
    await rbac.createNamespacedRoleBinding({
      namespace: 'rbac-test',
      body: {
        metadata: { name: 'alice-reads' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'cm-reader' },
        subjects: [{ kind: 'User', name: 'alice', apiGroup: 'rbac.authorization.k8s.io' }],
      },
    })
    const alice = kubeFor(sb.mintUserKubeconfig('alice', ['dev'])).core
    const listed = await eventually('RBAC grant visible', () =>
      alice.listNamespacedConfigMap({ namespace: 'rbac-test' }),
    )
    assert.ok(Array.isArray(listed.items))
    await assert.rejects(
      alice.createNamespacedConfigMap({ namespace: 'rbac-test', body: { metadata: { name: 'nope' } } }),
      (err) => httpCode(err) === 403,
    )
    await assert.rejects(alice.listNamespace(), (err) => httpCode(err) === 403)
    const robot = kubeFor(await sb.mintServiceAccountKubeconfig('rbac-test', 'robot')).core
    await assert.rejects(robot.listNamespacedSecret({ namespace: 'rbac-test' }), (err) => httpCode(err) === 403)
  })

  it('survives a kube-apiserver restart: data persists and a live watch reconnects', async () => {
    const sb = sandbox()
    const { core, kc } = kube()
    await core.createNamespacedConfigMap({ namespace: 'apps', body: { metadata: { name: 'before-restart' } } })
    const seen = new Set<string>()
    let watchEnded = false
    const watch = new Watch(kc)
    const startWatch = () =>
      watch.watch(
        '/api/v1/namespaces/apps/configmaps',
        {},
        (_type, obj: { metadata: { name: string } }) => seen.add(obj.metadata.name),
        () => {
          watchEnded = true
        },
      )
    await startWatch()
    await sb.restartApiServer()
    await eventually('watch noticed the outage', async () => watchEnded, 10_000)
    // A client reconnects the way every controller does: a new watch on the restarted server.
    await startWatch()
    await core.createNamespacedConfigMap({ namespace: 'apps', body: { metadata: { name: 'after-restart' } } })
    await eventually('event after restart', async () => seen.has('after-restart'))
    const kept = await core.readNamespacedConfigMap({ name: 'before-restart', namespace: 'apps' })
    assert.equal(kept.metadata?.name, 'before-restart')
  })

  it('runs a second sandbox side by side, and stop() leaves no process behind', async () => {
    const second = await startSandbox({ ownerPid: process.pid, agent: false })
    try {
      assert.notEqual(second.state.ports.apiserver, sandbox().state.ports.apiserver)
      const ns = await kubeFor(second.kubeconfig).core.listNamespace()
      assert.ok(!ns.items.some((n) => n.metadata?.name === 'apps'), 'the second sandbox has its own etcd')
    } finally {
      await second.stop()
    }
    assert.deepEqual(processesMentioning(second.dir), [])
  })
})
