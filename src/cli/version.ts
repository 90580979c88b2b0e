// The package's version, read from package.json at run time: src/cli (tsx) and
// dist/cli (compiled) both sit two levels below the package root, so one relative path
// serves the checkout and an installed package.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";

const root = new URL("../../", import.meta.url);

export const VERSION: string = (
  JSON.parse(readFileSync(new URL("package.json", root), "utf8")) as {
    version: string;
  }
).version;

let commit: string | undefined;

/**
 * The git commit the code is from: the checkout's HEAD when run from one, else what
 * `npm run build` recorded in dist/COMMIT (an installed package has no .git), else
 * "unknown". Looked up on first use only: most commands never ask.
 */
export function buildCommit(): string {
  if (commit !== undefined) return commit;
  commit = "unknown";
  try {
    if (existsSync(new URL(".git", root))) {
      commit = execFileSync("git", ["-C", root.pathname, "rev-parse", "--short=12", "HEAD"], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
      }).trim();
    } else {
      commit = readFileSync(new URL("dist/COMMIT", root), "utf8").trim() || commit;
    }
  } catch {
    // No git, or no record: "unknown" says so.
  }
  return commit;
}
