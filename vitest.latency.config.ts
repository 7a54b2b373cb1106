// The conformance cases that measure milliseconds (DESIGN §8), one provider at a time, after
// the rest of the tests (`npm test` runs this second): on two shared cores, files running at
// the same time made them measure the load, not the provider.
import { defineConfig } from "vitest/config"

const latency = (provider: string) => ({
  test: { name: `${provider}-latency`, root: `./packages/${provider}`, include: ["test/latency.test.ts"] }
})

export default defineConfig({
  test: { projects: ["pgmq", "rabbitmq", "redis", "sqs"].map(latency), fileParallelism: false }
})
