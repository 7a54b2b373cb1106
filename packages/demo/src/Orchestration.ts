/**
 * A small Tasker-like orchestration on any `Messaging` provider. Clients put
 * task requests on `orchestration_task_requests`; the orchestrator dispatches
 * each ready step to its namespace's `worker_<ns>_queue`; workers run the step
 * and reply on `orchestration_step_results`; the orchestrator records the
 * output, dispatches the steps whose dependencies are now all done, and
 * completes the workflow when its last step reports.
 *
 * Workflow state lives in this process (a real orchestrator would keep it in
 * its database); delivery is at-least-once, so a repeated result is ignored.
 */
import { MessageClient, Messaging, type MessagingError, QueueRouter } from "@conveyor/core"
import { Clock, Deferred, Effect } from "effect"
import { StepDispatch, StepResult, TaskRequest } from "./Messages.ts"
import * as Workflow from "./Workflow.ts"

export interface Options {
  readonly workflows: number
  /** Workflows in flight at once: a new one starts when one completes. */
  readonly concurrency: number
}

export interface Outcome {
  readonly workflowId: string
  readonly input: number
  readonly outputs: Workflow.Outputs
  /** Task request sent → last step's result handled, milliseconds. */
  readonly latencyMs: number
}

/** Live counters, for a progress display. */
export class Progress {
  started = 0
  completed = 0
  sent = 0
}

export interface Report {
  readonly outcomes: ReadonlyArray<Outcome>
  readonly elapsedMs: number
  /** Messages sent through the provider: requests, dispatches and results. */
  readonly messages: number
}

/** Each worker's and the orchestrator's consumer: handlers at once, messages claimed per batch. */
const runOptions = { concurrency: 32, batchSize: 64 }

interface Running {
  readonly input: number
  readonly startedAt: number
  readonly outputs: Workflow.Outputs
  readonly dispatched: Set<Workflow.StepName>
  readonly done: Deferred.Deferred<Outcome>
}

const nowMs = Effect.map(Clock.currentTimeNanos, (nanos) => Number(nanos) / 1e6)

export const run = (
  options: Options,
  progress: Progress = new Progress()
): Effect.Effect<Report, MessagingError.MessagingError, Messaging.Messaging> =>
  Effect.scoped(Effect.gen(function*() {
    const messaging = yield* Messaging.Messaging
    const router = QueueRouter.make()
    const taskRequests = MessageClient.make(router.taskRequests, TaskRequest)
    const stepResults = MessageClient.make(router.stepResults, StepResult)
    const workers = new Map(yield* Effect.forEach(Workflow.namespaces, (namespace) =>
      Effect.map(router.worker(namespace), (queue) => [namespace, MessageClient.make(queue, StepDispatch)] as const)))
    const running = new Map<string, Running>()

    // Counted as it goes out: its receiver may handle it, and so finish the workflow, before
    // the send itself returns (an idle consumer runs its handler in the delivery's turn).
    const counted = <A, E, R>(send: Effect.Effect<A, E, R>) =>
      Effect.andThen(Effect.sync(() => progress.sent++), send)

    const dispatch = (workflowId: string, workflow: Running, step: Workflow.Step) => {
      workflow.dispatched.add(step.name)
      const dependencies: Record<string, number> = {}
      for (const name of step.dependsOn) dependencies[name] = workflow.outputs[name]!
      return counted(workers.get(step.namespace)!.send({
        workflowId,
        step: step.name,
        input: workflow.input,
        dependencies
      }))
    }

    const onTaskRequest = Effect.fn("Orchestrator.taskRequest")(function*(request: typeof TaskRequest.Type) {
      const workflow = running.get(request.workflowId)
      if (workflow === undefined) return
      for (const root of Workflow.roots) {
        if (!workflow.dispatched.has(root.name)) yield* dispatch(request.workflowId, workflow, root)
      }
    })

    const onStepResult = Effect.fn("Orchestrator.stepResult")(function*(result: typeof StepResult.Type) {
      const workflow = running.get(result.workflowId)
      // Unknown (an earlier run's leftovers) or already recorded (a redelivery): nothing to do.
      if (workflow === undefined || workflow.outputs[result.step] !== undefined) return
      workflow.outputs[result.step] = result.output
      const ready = Workflow.dependents(result.step).filter((next) =>
        !workflow.dispatched.has(next.name) && next.dependsOn.every((name) => workflow.outputs[name] !== undefined)
      )
      // Mark them all before the first send yields, so a concurrent result cannot dispatch them again.
      for (const next of ready) workflow.dispatched.add(next.name)
      yield* Effect.forEach(ready, (next) => dispatch(result.workflowId, workflow, next), { discard: true })
      if (Workflow.stepNames.every((name) => workflow.outputs[name] !== undefined)) {
        const latencyMs = (yield* nowMs) - workflow.startedAt
        yield* Deferred.succeed(workflow.done, {
          workflowId: result.workflowId,
          input: workflow.input,
          outputs: workflow.outputs,
          latencyMs
        })
      }
    })

    const onStep = Effect.fn("Worker.step")(function*(dispatched: typeof StepDispatch.Type) {
      const output = Workflow.execute(dispatched.step, dispatched.input, dispatched.dependencies)
      yield* counted(stepResults.send({ workflowId: dispatched.workflowId, step: dispatched.step, output }))
    })

    const consumers = [taskRequests.run(onTaskRequest, runOptions), stepResults.run(onStepResult, runOptions)]
    for (const worker of workers.values()) consumers.push(worker.run(onStep, runOptions))

    // Start clean: on a persistent provider an earlier, interrupted run may have left messages.
    const queues = [taskRequests.queue, stepResults.queue, ...[...workers.values()].map((worker) => worker.queue)]
    yield* Effect.forEach(queues, (queue) => Effect.andThen(messaging.ensureQueue(queue), () => messaging.purgeQueue(queue)), {
      discard: true
    })
    yield* Effect.forEach(consumers, (consumer) => Effect.forkScoped(consumer), { discard: true })

    const runId = (yield* Clock.currentTimeMillis).toString(36)
    const runOne = (index: number) =>
      Effect.gen(function*() {
        const workflowId = `${runId}-${index}`
        const workflow: Running = {
          input: index,
          startedAt: yield* nowMs,
          outputs: {},
          dispatched: new Set(),
          done: yield* Deferred.make<Outcome>()
        }
        running.set(workflowId, workflow)
        progress.started++
        yield* counted(taskRequests.send({ workflowId, input: index }))
        const outcome = yield* Deferred.await(workflow.done)
        running.delete(workflowId)
        progress.completed++
        return outcome
      })

    const startedAt = yield* nowMs
    const sentBefore = progress.sent
    const outcomes = yield* Effect.forEach(
      Array.from({ length: options.workflows }, (_, index) => index),
      runOne,
      { concurrency: options.concurrency }
    )
    return { outcomes, elapsedMs: (yield* nowMs) - startedAt, messages: progress.sent - sentBefore }
  }))
