// The engine simulator against the contract (the suite: test/helpers/engine-contract.ts; Gen N: gen-n/, the real
// engine: real-engine.test.ts).
import { engineContract } from '../helpers/engine-contract.js'

engineContract('sim')
