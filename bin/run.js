#!/usr/bin/env node
import { execute } from '@oclif/core'

await execute({ dir: import.meta.url })
// Nothing may keep running once the command is done (a watch, a timer): exit once stdout is flushed.
process.stdout.write('', () => process.exit())
