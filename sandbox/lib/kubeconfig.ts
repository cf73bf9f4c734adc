// Writes kubeconfig files the way kubectl, helm and @kubernetes/client-node all read them.
import { writeFileSync } from 'node:fs'
import { stringify } from 'yaml'
import { base64File, type CertPair } from './pki.js'

export interface KubeconfigUser {
  certs?: CertPair
  token?: string
}

export function writeKubeconfig(
  path: string,
  server: string,
  caFile: string,
  name: string,
  user: KubeconfigUser,
  namespace?: string,
): string {
  const userEntry: Record<string, string> = {}
  if (user.certs) {
    userEntry['client-certificate-data'] = base64File(user.certs.cert)
    userEntry['client-key-data'] = base64File(user.certs.key)
  }
  if (user.token) userEntry.token = user.token
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'krateo-sandbox', cluster: { server, 'certificate-authority-data': base64File(caFile) } }],
    users: [{ name, user: userEntry }],
    contexts: [{ name, context: { cluster: 'krateo-sandbox', user: name, ...(namespace ? { namespace } : {}) } }],
    'current-context': name,
  }
  writeFileSync(path, stringify(doc), { mode: 0o600 })
  return path
}
