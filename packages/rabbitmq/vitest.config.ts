import { defineProject } from "vitest/config"

export default defineProject({ test: { name: "rabbitmq", include: ["test/**/*.test.ts"] } })
