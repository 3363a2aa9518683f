import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { it } from "node:test";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? listFiles(path) : [path];
  });
}

it("gen/ is exactly what `buf generate` makes of proto/", () => {
  const out = mkdtempSync(join(tmpdir(), "chat-gen-"));
  try {
    const bin = join(root, "node_modules", ".bin");
    // buf finds the protoc-gen-es plugin on PATH.
    execFileSync(join(bin, "buf"), ["generate", "--output", out], {
      cwd: root,
      stdio: "pipe",
      env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}` },
    });
    const fresh = join(out, "gen");
    const committed = join(root, "gen");
    const freshFiles = listFiles(fresh)
      .map((p) => relative(fresh, p))
      .sort();
    const committedFiles = listFiles(committed)
      .map((p) => relative(committed, p))
      .sort();
    assert.deepEqual(committedFiles, freshFiles, "gen/ has other files than buf generates: run `npm run generate`");
    for (const file of freshFiles) {
      assert.equal(
        readFileSync(join(committed, file), "utf8"),
        readFileSync(join(fresh, file), "utf8"),
        `gen/${file} differs from what buf generates: run \`npm run generate\``,
      );
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
