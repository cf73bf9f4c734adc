// The same suite against a Gen N engine (contract section 0): the sandbox's generation comes from this variable.
process.env.KRATEO_SANDBOX_GENERATION = 'N'
await import('../rerun.test.js')
