/** What main.ts asks of a measuring process (Child.ts), how it starts one, and what it answers. */
import { Effect } from "effect"
import { fork } from "node:child_process"
import { fileURLToPath } from "node:url"
import type { RunKey } from "./Provider.ts"
import type { ProviderName } from "./Providers.ts"
import type { Result } from "./Results.ts"
import { type Counts, fullCounts, quickCounts } from "./Workloads.ts"

export interface Spec {
  readonly provider: ProviderName
  readonly subject: string
  readonly run: RunKey
  readonly round: number
  readonly quick: boolean
}

export type Answer =
  | { readonly ok: true; readonly result: Result; readonly load1: number }
  | { readonly ok: false; readonly error: string }

export const countsFor = (quick: boolean, own?: (counts: Counts) => Counts): Counts =>
  (own ?? ((c) => c))(quick ? quickCounts : fullCounts)

const childPath = fileURLToPath(new URL("./Child.ts", import.meta.url))

/** Runs one measurement in a child process; its stdout goes to our stderr, the report stays clean. */
export const runChild = (spec: Spec) =>
  Effect.callback<Answer>((resume) => {
    const child = fork(childPath, [JSON.stringify(spec)], { stdio: ["ignore", 2, "inherit", "ipc"] })
    let answered = false
    child.on("message", (answer: Answer) => {
      answered = true
      resume(Effect.succeed(answer))
    })
    child.on("exit", (code) => {
      if (!answered) resume(Effect.succeed({ ok: false, error: `measuring process exited with code ${code}` }))
    })
    return Effect.sync(() => child.kill())
  })
