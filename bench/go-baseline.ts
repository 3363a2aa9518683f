/**
 * Builds the grpc-go baseline (bench/baselines/grpc-go/main.go) with the Go
 * toolchain and grpc-go that Debian packages, so that the benchmark can run
 * it without network access, or says why it cannot.
 */

import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Where Debian's golang-google-grpc-dev puts its sources, in GOPATH form. */
const debianGopath = "/usr/share/gocode";
const sourceDir = fileURLToPath(new URL("./baselines/grpc-go/", import.meta.url));
const install = "apt-get install golang-go golang-google-grpc-dev";

/**
 * Builds the grpc-go baseline and resolves with the path of its binary, or
 * with the reason it was skipped: Go or Debian's grpc-go missing, or a
 * failed build. It never rejects, so that the benchmark runs the other
 * servers either way. The build lives in a fixed directory under the system's
 * temporary directory, so Go's build cache makes every build after the first
 * take a fraction of a second.
 */
export async function buildGoBaseline(): Promise<{ binary: string } | { skipped: string }> {
  try {
    await run("go", ["version"]);
  } catch {
    return { skipped: `grpc-go baseline skipped: no \`go\` on PATH (${install})` };
  }
  if (!existsSync(join(debianGopath, "src/google.golang.org/grpc"))) {
    return { skipped: `grpc-go baseline skipped: no grpc-go under ${debianGopath}/src (${install})` };
  }
  const dir = join(tmpdir(), "grpc-chat-bench-go");
  const binary = join(dir, "chat-grpc-go");
  await mkdir(dir, { recursive: true });
  try {
    await run("go", ["build", "-o", binary, "."], {
      cwd: sourceDir,
      env: {
        ...process.env,
        // Debian ships grpc-go as GOPATH sources, not modules, and there is
        // no network to fetch modules from.
        GO111MODULE: "off",
        GOPATH: `${join(dir, "gopath")}:${debianGopath}`,
        // Ours, so that a read-only home or a caller's GOFLAGS (-mod=..., which
        // GOPATH mode rejects) cannot break the build.
        GOCACHE: join(dir, "cache"),
        GOFLAGS: "",
        // Pure Go: no C compiler needed, and a static binary.
        CGO_ENABLED: "0",
      },
    });
  } catch (error) {
    const stderr = typeof error === "object" && error !== null && "stderr" in error ? String(error.stderr) : String(error);
    const firstLines = stderr.trim().split("\n").slice(0, 5).join(" | ");
    return { skipped: `grpc-go baseline did not build: ${firstLines}` };
  }
  return { binary };
}
