export * as Sqs from "./Sqs.ts"
