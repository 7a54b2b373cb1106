/**
 * Issue 8.14: `npm start -- --backend pgmq|rabbitmq` with the URL unset runs
 * on the local server and says which, instead of a ConfigError.
 */
import { Messaging, QueueName } from "@conveyor/core"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer } from "effect"
import { execFile } from "node:child_process"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import * as Connect from "@conveyor/demo/src/Connect.ts"

const root = join(dirname(fileURLToPath(import.meta.url)), "../../..")
const noUrls = ConfigProvider.layer(ConfigProvider.fromUnknown({}))

describe("the demo's provider with its URL unset", () => {
  for (const backend of ["pgmq", "rabbitmq"] as const) {
    it.live(`${backend}: the local server, a round trip`, () =>
      Effect.gen(function*() {
        const m = yield* Messaging.Messaging
        const q = QueueName.makeUnsafe(`demo_connect_${Math.random().toString(36).slice(2, 10)}`)
        yield* m.ensureQueue(q)
        yield* Effect.addFinalizer(() => Effect.ignore(m.deleteQueue(q)))
        const id = yield* m.send(q, "hello")
        const [message] = yield* m.receive(q, { max: 1, visibilityTimeout: "30 seconds" })
        assert.strictEqual(message?.id, id)
        yield* m.ack(message!.receipt)
      }).pipe(Effect.scoped, Effect.provide(Connect.layer(backend).pipe(Layer.provide(noUrls)))), { timeout: 30_000 })
  }

  it("npm start says in one line which server it used", { timeout: 60_000 }, async () => {
    const env = { ...process.env }
    delete env["DATABASE_URL"]
    delete env["MESSAGING_BACKEND"]
    const { stderr, stdout } = await promisify(execFile)(
      process.execPath,
      [join(root, "packages/demo/src/main.ts"), "--backend", "pgmq", "--workflows", "3"],
      { env, cwd: root }
    )
    assert.include(stderr, "DATABASE_URL is unset: using the local PostgreSQL at 127.0.0.1:5432")
    assert.notInclude(stderr, "ConfigError")
    assert.match(stdout, /workflows done\s+\| 3 \/ 3/)
  })
})
