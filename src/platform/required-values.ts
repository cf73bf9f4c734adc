// Values a chart documents as required once a feature is on, checked before anything is changed. The newer
// charts enable vertexAI by default and then need vertexAI.projectID (it has no default): without it the
// platform installs and its agents never answer. Pure.
import { type Component, type InstallerSpec, isEnabled } from './components.js'
import { ExitCode, UserError } from './errors.js'

interface VertexAI {
  enabled?: boolean
  projectID?: string
}

/** Features whose components talk to a model: the agents. */
const usesModel = (c: Component) => /agent/i.test(c.feature ?? '') || /agent/i.test(c.tier ?? '')

export function checkRequiredValues(spec: InstallerSpec, components: Component[]): void {
  const vertex = spec.vertexAI as VertexAI | undefined
  if (!vertex?.enabled || vertex.projectID) return
  const agents = components.filter((c) => isEnabled(c, spec.features) && usesModel(c)).map((c) => c.name)
  if (agents.length === 0) return
  throw new UserError(
    `vertexAI is enabled (the chart's default) but vertexAI.projectID is empty, so ${agents.join(', ')} would install and never work`,
    ExitCode.Chart,
    'pass --set vertexAI.projectID=<your Google Cloud project>, or use a local model with --set vertexAI.enabled=false --set localModel.enabled=true, or turn the agents off with --feature',
  )
}
