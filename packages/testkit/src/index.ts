export * as BadInput from "./BadInput.ts"
export * as Conformance from "./Conformance.ts"
export * as Harness from "./Harness.ts"
export * as TcpProxy from "./TcpProxy.ts"
