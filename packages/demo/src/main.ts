/**
 * `npm start`: a Tasker-like orchestration of many concurrent 7-step
 * workflows on the provider picked by `--backend` (else `MESSAGING_BACKEND`,
 * else the in-memory default), then a summary table.
 */
import { Backend } from "@conveyor/backend"
import { Observability } from "@conveyor/core"
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Console, Effect, Metric } from "effect"
import { Command, Flag } from "effect/cli"
import * as Connect from "./Connect.ts"
import * as Orchestration from "./Orchestration.ts"
import * as Progress from "./Progress.ts"
import * as Summary from "./Summary.ts"

const received = (path: "push" | "poll") =>
  Effect.map(Metric.value(Observability.receivedOn(path)), (state) => Number(state.count))

const positive = (n: number) => n >= 1

const demo = Command.make("demo", {
  workflows: Flag.Int("workflows").pipe(
    Flag.withDescription("How many workflows to run"),
    Flag.filter(positive, (n) => `--workflows must be at least 1 (got ${n})`),
    Flag.withDefault(2000)
  ),
  concurrency: Flag.Int("concurrency").pipe(
    Flag.withDescription("Workflows in flight at once"),
    Flag.filter(positive, (n) => `--concurrency must be at least 1 (got ${n})`),
    Flag.withDefault(100)
  ),
  backend: Flag.Literals("backend", Backend.names).pipe(
    Flag.withDescription("Messaging provider (default: MESSAGING_BACKEND, else memory)"),
    Flag.withFallbackConfig(Backend.name)
  )
}, ({ backend, concurrency, workflows }) =>
  Effect.gen(function*() {
    const pushBefore = yield* received("push")
    const pollBefore = yield* received("poll")
    const progress = new Orchestration.Progress()
    const report = yield* Orchestration.run({ workflows, concurrency }, progress).pipe(
      Effect.raceFirst(Progress.display(progress, workflows))
    )
    yield* Console.log(Summary.render({
      backend,
      requested: workflows,
      concurrency,
      report,
      receivedByPush: (yield* received("push")) - pushBefore,
      receivedByPoll: (yield* received("poll")) - pollBefore
    }))
  }).pipe(Effect.provide(Connect.layer(backend)))).pipe(
    Command.withDescription("Run many concurrent 7-step workflows through Conveyor and report how it went")
  )

demo.pipe(
  Command.run({ version: "0.1.0" }),
  Effect.provide(NodeServices.layer),
  NodeRuntime.runMain
)
