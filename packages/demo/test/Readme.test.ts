/**
 * Every TypeScript block of the README compiles: each is written out as a
 * module of its own and type-checked by the project's own `tsc` with the
 * project's strict settings, against the packages as they are; the blocks
 * that are programs (they end in `runMain`) are also run.
 */
import { execFile } from "node:child_process"
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { assert, describe, it } from "@effect/vitest"

const root = join(dirname(fileURLToPath(import.meta.url)), "../../..")
const blocks = [...readFileSync(join(root, "README.md"), "utf8").matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!)

describe("README", () => {
  it("every ts block type-checks", { timeout: 120_000 }, async () => {
    assert.isAtLeast(blocks.length, 8, "the README's examples were found")
    // Inside the repo, so the workspace packages resolve as an application's would.
    const dir = join(root, "packages/demo/dist/readme")
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(dir, { recursive: true })
    blocks.forEach((code, i) => writeFileSync(join(dir, `block${i + 1}.ts`), `${code}\nexport {}\n`))
    writeFileSync(
      join(dir, "tsconfig.json"),
      JSON.stringify({
        extends: "../../../../tsconfig.base.json",
        // Examples may name values they do not use.
        compilerOptions: { noEmit: true, composite: false, declaration: false, declarationMap: false, noUnusedLocals: false },
        include: ["*.ts"]
      })
    )
    const result = await promisify(execFile)(join(root, "node_modules/.bin/tsc"), ["-p", dir]).then(
      () => "",
      (error: { stdout?: string; stderr?: string }) => `${error.stdout ?? ""}${error.stderr ?? ""}` || String(error)
    )
    assert.strictEqual(result, "", `README blocks do not compile:\n${result}`)
  })

  it("every ts block that is a program (runMain) runs and exits cleanly on the default provider", { timeout: 120_000 }, async () => {
    const programs = blocks.flatMap((code, i) => code.includes("runMain") ? [i] : [])
    assert.isAtLeast(programs.length, 1, "the README's programs were found")
    const dir = join(root, "packages/demo/dist/readme-run")
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(dir, { recursive: true })
    const env = { ...process.env }
    delete env["MESSAGING_BACKEND"]
    for (const i of programs) {
      const file = join(dir, `block${i + 1}.ts`)
      writeFileSync(file, `${blocks[i]}\nexport {}\n`)
      const failure = await promisify(execFile)(process.execPath, [file], { env, cwd: root, timeout: 60_000 }).then(
        () => "",
        (error: { stdout?: string; stderr?: string }) => `${error.stdout ?? ""}${error.stderr ?? ""}` || String(error)
      )
      assert.strictEqual(failure, "", `README block ${i + 1} failed when run:\n${failure}`)
    }
  })
})
