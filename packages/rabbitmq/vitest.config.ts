import { defineProject } from "vitest/config"

// test/latency.test.ts is the project rabbitmq-latency (vitest.latency.config.ts).
export default defineProject({ test: { name: "rabbitmq", include: ["test/**/*.test.ts"], exclude: ["test/latency.test.ts"] } })
