// The engine simulator against the contract (the suite: test/helpers/engine-contract.ts; Gen N: gen-n/, the real
// engine: real-engine.test.ts).
import { describe } from 'node:test'
import { contractSuite } from '../helpers/engine-contract.js'
import { onGeneration } from '../helpers/sandbox.js'

describe(onGeneration('the engine against the contract'), () => contractSuite('sim'))
