export * as Conformance from "./Conformance.ts"
export * as Harness from "./Harness.ts"
