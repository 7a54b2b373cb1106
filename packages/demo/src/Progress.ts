/**
 * A live progress line on stderr while the orchestration runs: rewritten in
 * place (`\r`) on a terminal, printed as plain periodic lines otherwise, so
 * logs and CI output stay readable.
 */
import { Effect, Schedule } from "effect"
import type { Progress } from "./Orchestration.ts"

const terminal = process.stderr.isTTY === true

const line = (progress: Progress, total: number, startedAt: number) => {
  const seconds = (performance.now() - startedAt) / 1000
  const inFlight = progress.started - progress.completed
  // A rate over the first instants says nothing (the first requests go out at once).
  const rate = seconds < 0.5 ? "…" : Math.round(progress.sent / seconds).toLocaleString("en-US")
  return `workflows ${progress.completed}/${total} · in flight ${inFlight} · messages ${progress.sent} · ${rate} msg/s · ${seconds.toFixed(1)} s`
}

const write = (text: string) => Effect.sync(() => process.stderr.write(text))

/** Shows `progress` until interrupted; on a terminal the line is cleared at the end. */
export const display = (progress: Progress, total: number): Effect.Effect<never> =>
  Effect.suspend(() => {
    const startedAt = performance.now()
    const show = Effect.suspend(() =>
      terminal
        ? write(`\r\x1b[K${line(progress, total, startedAt)}`)
        : write(`${line(progress, total, startedAt)}\n`)
    )
    return show.pipe(
      Effect.repeat(Schedule.spaced(terminal ? "100 millis" : "1 second")),
      Effect.andThen(Effect.never),
      Effect.ensuring(terminal ? write("\r\x1b[K") : Effect.void)
    )
  })
