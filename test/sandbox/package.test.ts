// Shipping: `npm pack` from a clean clone yields a package that installs with `npm install -g` and runs every
// command without devDependencies. Offline: every dependency is bundled in the tarball (bundleDependencies).
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { cpSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { repo } from '../helpers/cli.js'

describe('the packed CLI', () => {
  const work = mkdtempSync(join(tmpdir(), 'krateo-pack-'))
  after(() => rmSync(work, { recursive: true, force: true }))
  const run = (cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) =>
    execFileSync(cmd, args, {
      cwd,
      env: {
        ...process.env,
        npm_config_audit: 'false',
        npm_config_fund: 'false',
        npm_config_update_notifier: 'false',
        ...env,
      },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    })

  it('packs from a clean clone, installs globally without devDependencies, and runs', { timeout: 600_000 }, () => {
    const clone = join(work, 'clone')
    run('git', ['clone', '--quiet', '--no-local', repo, clone], work)
    // The clone builds with the dependencies the lock file pinned, already installed by the set-up (a copy, not
    // a link: npm pack bundles dependencies from the package's own node_modules).
    cpSync(join(repo, 'node_modules'), join(clone, 'node_modules'), { recursive: true, verbatimSymlinks: true })
    run('npm', ['pack', '--loglevel=error', '--pack-destination', work], clone)
    const tgz = readdirSync(work).find((f) => /^krateo-installer-.*\.tgz$/.test(f))
    assert.ok(tgz, 'a tarball')
    const files = run('tar', ['-tzf', join(work, tgz)], work).split('\n')
    assert.ok(
      files.includes('package/LICENSE') &&
        files.includes('package/dist/entry/commands.js') &&
        files.includes('package/oclif.manifest.json'),
      'LICENSE, the bundled commands and the manifest are in it',
    )
    assert.ok(
      !files.some(
        (f) => f.startsWith('package/src/') || f.startsWith('package/test/') || f.startsWith('package/sandbox/'),
      ),
      'no sources, tests or sandbox',
    )
    assert.ok(
      files.every((f) => !f || f.startsWith('package/')),
      'every file inside the package',
    )
    const prefix = join(work, 'global')
    run(
      'npm',
      // A registry nobody answers (loopback, closed): what the tarball does not bundle fails here as on a clean
      // machine, whatever metadata this machine's npm cache happens to hold.
      [
        'install',
        '-g',
        '--offline',
        '--omit=dev',
        '--loglevel=error',
        '--registry',
        'http://127.0.0.1:9/',
        '--prefix',
        prefix,
        join(work, tgz),
      ],
      work,
    )
    const bin = join(prefix, 'bin', 'krateo-installer')
    const env = { NO_COLOR: '1', KUBECONFIG: join(work, 'none') }
    assert.match(run(bin, ['--help'], work, env), /COMMANDS[\s\S]*install[\s\S]*uninstall[\s\S]*version/)
    assert.match(run(bin, ['uninstall', '--help'], work, env), /--purge/)
    assert.match(run(bin, ['version', '--client'], work, env), /^krateo-installer \d+\.\d+\.\d+/)
    assert.match(run(bin, ['autocomplete', 'bash'], work, env), /krateo-installer/)
    // Every command loads (no missing module) and fails as documented without a cluster.
    for (const command of ['status', 'install', 'upgrade', 'uninstall', 'check']) {
      let code = 0
      let stderr = ''
      try {
        run(bin, [command], work, env)
      } catch (err) {
        code = (err as { status: number }).status
        stderr = String((err as { stderr: string }).stderr)
      }
      assert.equal(code, 3, `${command}: ${stderr}`)
      assert.match(stderr, /^Error: none of the files in \$KUBECONFIG exists/m, command)
    }
  })
})
