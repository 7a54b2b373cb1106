import { defineProject } from "vitest/config"

export default defineProject({ test: { name: "sqs", include: ["test/**/*.test.ts"], exclude: ["test/latency.test.ts"] } })
