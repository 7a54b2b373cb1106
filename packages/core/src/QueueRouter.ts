/**
 * Tasker's queue naming: where a namespace's work, the orchestration queues
 * and domain events live, and the way back from a queue name to its kind.
 * The affixes are configurable for deployments that prefix their queues.
 */
import { Data, Effect } from "effect"
import type { InvalidQueueName } from "./MessagingError.ts"
import * as QueueName from "./QueueName.ts"

export interface Naming {
  /** Put before every queue name (e.g. `staging_`), default empty. */
  readonly prefix: string
  readonly workerPrefix: string
  readonly workerSuffix: string
  readonly domainEventsSuffix: string
  readonly stepResults: string
  readonly taskRequests: string
  readonly taskFinalizations: string
}

export const tasker: Naming = {
  prefix: "",
  workerPrefix: "worker_",
  workerSuffix: "_queue",
  domainEventsSuffix: "_domain_events",
  stepResults: "orchestration_step_results",
  taskRequests: "orchestration_task_requests",
  taskFinalizations: "orchestration_task_finalizations"
}

export type QueueKind = Data.TaggedEnum<{
  Worker: { readonly namespace: string }
  StepResults: {}
  TaskRequests: {}
  TaskFinalizations: {}
  DomainEvents: { readonly namespace: string }
  DeadLetter: { readonly of: QueueKind }
  Other: {}
}>

export const QueueKind = Data.taggedEnum<QueueKind>()

export interface QueueRouter {
  readonly naming: Naming
  readonly worker: (namespace: string) => Effect.Effect<QueueName.QueueName, InvalidQueueName>
  readonly domainEvents: (namespace: string) => Effect.Effect<QueueName.QueueName, InvalidQueueName>
  readonly stepResults: QueueName.QueueName
  readonly taskRequests: QueueName.QueueName
  readonly taskFinalizations: QueueName.QueueName
  /** The kind (and namespace) of a queue name; anything unrecognised is `Other`. */
  readonly classify: (queue: string) => QueueKind
}

/** Throws `InvalidQueueName` when the fixed orchestration names are invalid under `naming`. */
export const make = (naming: Partial<Naming> = {}): QueueRouter => {
  const n: Naming = { ...tasker, ...naming }
  const named = (name: string) => QueueName.make(n.prefix + name)
  const fixed = (name: string) => QueueName.makeUnsafe(n.prefix + name)

  const classify = (queue: string): QueueKind => {
    if (!queue.startsWith(n.prefix)) return QueueKind.Other()
    const name = queue.slice(n.prefix.length)
    if (name.endsWith("_dlq")) {
      const of = classify(queue.slice(0, -"_dlq".length))
      return of._tag === "Other" ? of : QueueKind.DeadLetter({ of })
    }
    if (name === n.stepResults) return QueueKind.StepResults()
    if (name === n.taskRequests) return QueueKind.TaskRequests()
    if (name === n.taskFinalizations) return QueueKind.TaskFinalizations()
    if (name.startsWith(n.workerPrefix) && name.endsWith(n.workerSuffix)) {
      const namespace = name.slice(n.workerPrefix.length, name.length - n.workerSuffix.length)
      if (namespace.length > 0) return QueueKind.Worker({ namespace })
    }
    if (name.endsWith(n.domainEventsSuffix) && name.length > n.domainEventsSuffix.length) {
      return QueueKind.DomainEvents({ namespace: name.slice(0, -n.domainEventsSuffix.length) })
    }
    return QueueKind.Other()
  }

  return {
    naming: n,
    worker: (namespace) => named(n.workerPrefix + namespace + n.workerSuffix),
    domainEvents: (namespace) => named(namespace + n.domainEventsSuffix),
    stepResults: fixed(n.stepResults),
    taskRequests: fixed(n.taskRequests),
    taskFinalizations: fixed(n.taskFinalizations),
    classify
  }
}
