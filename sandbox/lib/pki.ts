// A throw-away certificate authority per sandbox: serving certs for etcd and kube-apiserver, client certs
// for every component and for the users that tests mint. openssl is used because Node cannot issue X.509.
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface CertPair {
  cert: string
  key: string
}

function openssl(args: string[], input?: string): void {
  execFileSync('openssl', args, { input, stdio: ['pipe', 'ignore', 'pipe'] })
}

export function createCA(dir: string): CertPair {
  const pair = { cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') }
  openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    pair.key,
    '-out',
    pair.cert,
    '-days',
    '3650',
    '-subj',
    '/CN=krateo-sandbox-ca',
  ])
  return pair
}

export interface LeafOptions {
  commonName: string
  organizations?: string[]
  ipSANs?: string[]
  dnsSANs?: string[]
}

export function issueCert(dir: string, name: string, ca: CertPair, opts: LeafOptions): CertPair {
  const pair = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) }
  const csr = join(dir, `${name}.csr`)
  const subject = ['/CN=' + opts.commonName, ...(opts.organizations ?? []).map((o) => '/O=' + o)].join('')
  openssl([
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    pair.key,
    '-out',
    csr,
    '-subj',
    subject,
  ])
  const sans = [...(opts.ipSANs ?? []).map((ip) => 'IP:' + ip), ...(opts.dnsSANs ?? []).map((d) => 'DNS:' + d)]
  const ext = join(dir, `${name}.ext`)
  writeFileSync(
    ext,
    [
      'basicConstraints=CA:FALSE',
      'keyUsage=digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth,clientAuth',
      ...(sans.length ? ['subjectAltName=' + sans.join(',')] : []),
    ].join('\n') + '\n',
  )
  openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-CAcreateserial',
    '-days',
    '365',
    '-out',
    pair.cert,
    '-extfile',
    ext,
  ])
  return pair
}

export function createServiceAccountKey(dir: string): { key: string; pub: string } {
  const key = join(dir, 'sa.key')
  const pub = join(dir, 'sa.pub')
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key])
  openssl(['ec', '-in', key, '-pubout', '-out', pub])
  return { key, pub }
}

export function base64File(path: string): string {
  return readFileSync(path).toString('base64')
}
