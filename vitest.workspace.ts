// The test projects. vitest 5 ignores a workspace file on its own, so the root
// vitest.config.ts imports this list into `test.projects`.

export default [
  "packages/core",
  "packages/testkit",
  "packages/pgmq",
  "packages/rabbitmq",
  "packages/redis",
  "packages/sqs",
  "packages/backend",
  "packages/demo",
  "packages/bench"
]
