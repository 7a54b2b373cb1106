/**
 * The demo's workflow: an order pipeline of seven steps across six worker
 * namespaces, shaped as a DAG with a fan-out, a fan-in and a second fan-out:
 *
 *                     ┌─ reserve_inventory ─┐              ┌─ ship_order
 *   validate_order ───┼─ authorize_payment ─┼─ confirm_order ┤
 *                     └─ score_fraud ───────┘              └─ send_receipt
 *
 * Each step's output is a deterministic function of the workflow's input and
 * its dependencies' outputs, so a run can be checked against `expected`.
 */
export const stepNames = [
  "validate_order",
  "reserve_inventory",
  "authorize_payment",
  "score_fraud",
  "confirm_order",
  "ship_order",
  "send_receipt"
] as const

export type StepName = typeof stepNames[number]

export interface Step {
  readonly name: StepName
  /** The worker namespace that runs it: its queue is `worker_<namespace>_queue`. */
  readonly namespace: string
  readonly dependsOn: ReadonlyArray<StepName>
}

export const steps: ReadonlyArray<Step> = [
  { name: "validate_order", namespace: "orders", dependsOn: [] },
  { name: "reserve_inventory", namespace: "inventory", dependsOn: ["validate_order"] },
  { name: "authorize_payment", namespace: "payments", dependsOn: ["validate_order"] },
  { name: "score_fraud", namespace: "risk", dependsOn: ["validate_order"] },
  { name: "confirm_order", namespace: "orders", dependsOn: ["reserve_inventory", "authorize_payment", "score_fraud"] },
  { name: "ship_order", namespace: "fulfillment", dependsOn: ["confirm_order"] },
  { name: "send_receipt", namespace: "notifications", dependsOn: ["confirm_order"] }
]

export const namespaces: ReadonlyArray<string> = [...new Set(steps.map((step) => step.namespace))]

export const step = (name: StepName): Step => steps.find((candidate) => candidate.name === name)!

export const roots: ReadonlyArray<Step> = steps.filter((candidate) => candidate.dependsOn.length === 0)

export const dependents = (name: StepName): ReadonlyArray<Step> =>
  steps.filter((candidate) => candidate.dependsOn.includes(name))

export type Outputs = Partial<Record<StepName, number>>

/** The step's work: a 32-bit FNV-1a mix of its name, the input and its dependencies' outputs. */
export const execute = (name: StepName, input: number, dependencies: Outputs): number => {
  let hash = 0x811c9dc5
  const mix = (value: number) => {
    hash = Math.imul(hash ^ value, 0x01000193) >>> 0
  }
  for (const char of name) mix(char.charCodeAt(0))
  mix(input)
  for (const dependency of step(name).dependsOn) mix(dependencies[dependency] ?? 0)
  return hash
}

/** Every step's output for `input`, computed in process: what the queues must produce. */
export const expected = (input: number): Record<StepName, number> => {
  const outputs: Outputs = {}
  for (const { name } of steps) outputs[name] = execute(name, input, outputs)
  return outputs as Record<StepName, number>
}
