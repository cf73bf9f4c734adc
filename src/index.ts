// The package's entry point for programmatic use (`import { run } from 'krateo-installer'`), as oclif CLIs export it.
export { run } from '@oclif/core'
