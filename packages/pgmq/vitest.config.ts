import { defineProject } from "vitest/config"

export default defineProject({ test: { name: "pgmq", include: ["test/**/*.test.ts"] } })
