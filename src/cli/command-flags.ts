// Flags that install and upgrade share (helm, chart registry, the accelerate switch), and what they build.
import { Flags } from '@oclif/core'
import { ExitCode, UserError } from '../platform/errors.js'
import { Helm } from '../cluster/helm.js'
import { readStdin } from '../platform/flags.js'

export const chartAccessFlags = {
  accelerate: Flags.boolean({
    description:
      "nudge the installer's cdc (a change of the krateo.io/paused annotation it watches) when a layer is ready, instead of waiting for its resync; never a restart",
    default: true,
    allowNo: true,
  }),
  helm: Flags.string({ description: 'path of the helm binary (default: $HELM_BIN, then helm on PATH)' }),
  'registry-username': Flags.string({
    description: 'username for a private chart registry (also used by in-cluster pulls)',
  }),
  'registry-password-stdin': Flags.boolean({
    description: 'read the registry password from stdin (never from argv)',
    default: false,
  }),
  'plain-http': Flags.boolean({ description: 'use plain HTTP for the chart registry', default: false }),
  'insecure-skip-tls-verify': Flags.boolean({
    description: 'skip TLS verification of the chart registry',
    default: false,
  }),
  'ca-file': Flags.string({ description: 'CA bundle for the chart registry' }),
}

interface ChartAccess {
  helm?: string
  kubeconfig?: string
  context?: string
  verbose: boolean
  'registry-username'?: string
  'registry-password-stdin': boolean
  'plain-http': boolean
  'insecure-skip-tls-verify': boolean
  'ca-file'?: string
}

/** The helm of a command: uninstall has no registry flags (it pulls no chart). */
export function helmFrom(
  flags: Pick<ChartAccess, 'helm' | 'kubeconfig' | 'context' | 'verbose'> & Partial<ChartAccess>,
): Helm {
  return new Helm({
    bin: flags.helm,
    kubeconfig: flags.kubeconfig,
    context: flags.context,
    plainHttp: flags['plain-http'],
    insecureSkipTlsVerify: flags['insecure-skip-tls-verify'],
    caFile: flags['ca-file'],
    verbose: flags.verbose ? (m) => process.stderr.write(m + '\n') : undefined,
  })
}

/** The registry password, read from stdin only, and only together with a username. */
export async function registryPassword(flags: ChartAccess): Promise<string | undefined> {
  if (flags['registry-password-stdin'] && !flags['registry-username']) {
    throw new UserError(
      '--registry-password-stdin needs --registry-username',
      ExitCode.Usage,
      'pass the registry user with --registry-username',
    )
  }
  if (flags['registry-username'] && !flags['registry-password-stdin']) {
    throw new UserError(
      '--registry-username needs --registry-password-stdin',
      ExitCode.Usage,
      'pipe the password on stdin; it is never accepted as an argument',
    )
  }
  return flags['registry-password-stdin'] ? await readStdin() : undefined
}
