import { loadSandbox } from '/work/main/sandbox/lib/sandbox.ts'
const sb = loadSandbox('/tmp/krateo-sandbox-default')
const r = JSON.parse((await sb.apiGet('/apis/core.krateo.io/v1alpha1/compositiondefinitions')).body)
for (const cd of r.items.slice(0, 3)) console.log(cd.metadata.name, cd.metadata.deletionTimestamp, cd.metadata.finalizers, JSON.stringify(cd.status?.conditions))
const d = JSON.parse((await sb.apiGet('/apis/apps/v1/deployments')).body)
console.log(d.items.map((x: any) => x.metadata.name).join(' '))
