import { defineProject } from "vitest/config"

// test/latency.test.ts is the project pgmq-latency (vitest.latency.config.ts).
export default defineProject({ test: { name: "pgmq", include: ["test/**/*.test.ts"], exclude: ["test/latency.test.ts"] } })
