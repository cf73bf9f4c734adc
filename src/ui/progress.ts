// Runs a list of named steps with visible progress: a live listr2 view on a terminal, plain timestamped
// lines otherwise (CI, pipes, --json where they go to stderr).
import { Listr } from 'listr2'
import { stamp } from './output.js'
import { printable } from '../platform/errors.js'

export interface StepReport {
  /** A line of progress (plain mode prints it; the live view shows the latest). */
  line(message: string): void
  /** Replaces the live block under the step (the component table); plain mode ignores it. */
  block(text: string): void
  title(text: string): void
}

export interface Step {
  title: string
  run(report: StepReport): Promise<string | void>
}

export interface ProgressOptions {
  live: boolean
  stream: NodeJS.WriteStream
}

export function liveProgressWanted(json: boolean): boolean {
  return !json && !!process.stdout.isTTY && !process.env.CI
}

export async function runSteps(steps: Step[], opts: ProgressOptions): Promise<void> {
  if (opts.live) {
    const list = new Listr(
      steps.map((s) => ({
        title: s.title,
        // One output entry at a time: the live block (component table) with the latest line under it.
        rendererOptions: { outputBar: 1, persistentOutput: false },
        task: async (_ctx: unknown, task: { output: string; title: string }) => {
          const started = Date.now()
          let lastLine = ''
          let lastBlock = ''
          const show = () => {
            task.output = [lastBlock, lastLine].filter(Boolean).join('\n')
          }
          // Progress lines carry the cluster's words (condition messages, names): escaped for the terminal.
          const result = await s.run({
            line: (m) => {
              lastLine = printable(m)
              show()
            },
            block: (t) => {
              lastBlock = t
              show()
            },
            title: (t) => {
              task.title = printable(t)
            },
          })
          task.title = `${task.title}${result ? ` — ${result}` : ''} (${secs(started)})`
        },
      })),
      {
        concurrent: false,
        exitOnError: true,
        registerSignalListeners: false,
        rendererOptions: { collapseErrors: false },
      },
    )
    await list.run()
    return
  }
  const out = (m: string) => opts.stream.write(stamp(printable(m)) + '\n')
  for (const s of steps) {
    const started = Date.now()
    let title = s.title
    out(`▶ ${title}`)
    let last = ''
    const result = await s.run({
      line: (m) => {
        if (m !== last) {
          last = m
          out(`  ${m}`)
        }
      },
      block: () => undefined,
      title: (t) => {
        title = t
      },
    })
    out(`✔ ${title}${result ? ` — ${result}` : ''} (${secs(started)})`)
  }
}

const secs = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)}s`
