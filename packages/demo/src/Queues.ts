/** The Tasker queue names the demo runs on. */
import { QueueName } from "@conveyor/core"
import { namespaces } from "./Workflow.ts"

export const taskRequests = QueueName.makeUnsafe("orchestration_task_requests")

export const stepResults = QueueName.makeUnsafe("orchestration_step_results")

export const worker = (namespace: string): QueueName.QueueName => QueueName.makeUnsafe(`worker_${namespace}_queue`)

export const all: ReadonlyArray<QueueName.QueueName> = [taskRequests, stepResults, ...namespaces.map(worker)]
