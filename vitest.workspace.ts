// The test projects. vitest 5 ignores a workspace file on its own, so the root
// vitest.config.ts imports this list into `test.projects`.

/**
 * A provider's conformance cases that measure milliseconds (DESIGN §8), each in a group of its
 * own after every other project: on shared cores the other files running at the same time made
 * them measure the load, not the provider.
 */
const latency = (provider: string, groupOrder: number) => ({
  test: {
    name: `${provider}-latency`,
    root: `./packages/${provider}`,
    include: ["test/latency.test.ts"],
    sequence: { groupOrder }
  }
})

export default [
  "packages/core",
  "packages/testkit",
  "packages/pgmq",
  "packages/rabbitmq",
  "packages/redis",
  "packages/sqs",
  "packages/backend",
  "packages/demo",
  "packages/bench",
  latency("pgmq", 1),
  latency("rabbitmq", 2),
  latency("redis", 3),
  latency("sqs", 4)
]
