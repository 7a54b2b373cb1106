/**
 * The demo's typed payloads, one Schema per queue kind. `MessageClient`
 * encodes them on send and decodes them on consumption; a payload that does
 * not decode is a `DecodeError`, dead-lettered instead of retried.
 */
import { Schema } from "effect"
import { stepNames } from "./Workflow.ts"

const StepName = Schema.Literals(stepNames)

/** A client asks the orchestrator to run one workflow. */
export const TaskRequest = Schema.Struct({
  workflowId: Schema.String,
  input: Schema.Number
})

/** The orchestrator hands a step to its namespace's workers, with its dependencies' outputs. */
export const StepDispatch = Schema.Struct({
  workflowId: Schema.String,
  step: StepName,
  input: Schema.Number,
  dependencies: Schema.Record(Schema.String, Schema.Number)
})

/** A worker reports a finished step to the orchestrator. */
export const StepResult = Schema.Struct({
  workflowId: Schema.String,
  step: StepName,
  output: Schema.Number
})
