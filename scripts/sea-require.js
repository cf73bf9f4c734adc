// Banner of the single executable's bundle (scripts/package.sh): its require answers oclif's loads of the
// explicit command and hook files from memory (globalThis.__seaModules, src/entry/sea.ts), built-in modules
// from Node, and anything else (optional dependencies probed in try/catch) as not found, never from disk.
var require = ((real) => {
  const builtin = new Set(real('module').builtinModules)
  const missing = (id) => Object.assign(new Error(`Cannot find module '${id}'`), { code: 'MODULE_NOT_FOUND' })
  const seaRequire = (id) => {
    const own = globalThis.__seaModules && globalThis.__seaModules[id]
    if (own) return own
    if (id.startsWith('node:') || builtin.has(id)) return real(id)
    throw missing(id)
  }
  seaRequire.resolve = (id) => {
    if (globalThis.__seaModules && globalThis.__seaModules[id]) return id
    throw missing(id)
  }
  return seaRequire
})(require)
