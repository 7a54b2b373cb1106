export * as Backend from "./Backend.ts"
