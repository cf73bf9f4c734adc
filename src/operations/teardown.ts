// The three-stage teardown of contract section 1 (uninstall.ts lists its steps; upgrade uses the pause and the
// drain). Every delete, finalizer removal and pause acts only on what the inventory proved is the platform's.
// 1. the ordered drain: the Installer paused (teardown/pause.ts), Compositions deleted consumers first while
//    every provider lives (teardown/drain.ts), each waited for by one wait (teardown/wait-gone.ts);
// 2. the bootstrap teardown: the Installer CR and the platform's CompositionDefinitions while core-provider
//    lives, then helm uninstall of the bootstrap release with its hooks skipped (teardown/bootstrap.ts,
//    generated-crds.ts, stand-in.ts);
// 3. the post-delete sweep (teardown/sweep.ts).
import type { Helm } from '../cluster/helm.js'
import type { Component } from '../platform/components.js'
import type { ManagedRef } from '../platform/ownership.js'
import type { KObj } from '../platform/kobj.js'
import type { StepReport } from '../ui/progress.js'
import { deleteInstallerAndDefinitions, uninstallRelease } from './teardown/bootstrap.js'
import { drainComposition, finishRelease } from './teardown/drain.js'
import { letInstallerReCreate, pauseInstaller, unpauseIfOurs } from './teardown/pause.js'
import { TeardownRun } from './teardown/run.js'
import { sweep } from './teardown/sweep.js'

export type { TeardownOptions } from './teardown/run.js'

export class Teardown extends TeardownRun {
  pauseInstaller(installer: KObj, installerCD: KObj | undefined, report: StepReport): Promise<string> {
    return pauseInstaller(this, installer, installerCD, report)
  }

  letInstallerReCreate(names: string[], report: StepReport, reCreated: (name: string, c: KObj) => void) {
    return letInstallerReCreate(this, names, report, reCreated)
  }

  unpauseIfOurs(installer: KObj | null, alsoRemove: string[] = []): Promise<boolean> {
    return unpauseIfOurs(this, installer, alsoRemove)
  }

  drainComposition(c: Component, obj: KObj, plural: string, report: StepReport): Promise<void> {
    return drainComposition(this, c, obj, plural, report)
  }

  finishRelease(c: Component, left: ManagedRef[], report: StepReport): Promise<void> {
    return finishRelease(this, c, left, report)
  }

  deleteInstallerAndDefinitions(installer: KObj | null, helm: Helm, report: StepReport): Promise<string> {
    return deleteInstallerAndDefinitions(this, installer, helm, report)
  }

  uninstallRelease(helm: Helm): Promise<string> {
    return uninstallRelease(this, helm)
  }

  sweep(report: StepReport): Promise<string[]> {
    return sweep(this, report)
  }
}
