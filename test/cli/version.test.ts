// `vxtun --version` and `-V` print package.json's version, from source and from the
// compiled CLI that bin/vxtun.js runs (which reads package.json from another folder).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { run } from "../../src/system/exec.js";
import { CLI, REPO } from "../fixtures/vxtun.js";

const { version } = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as {
  version: string;
};

t.test("from source: --version and -V print the version and exit 0", async (t) => {
  for (const flag of ["--version", "-V"]) {
    const r = await run([...CLI, flag], { timeoutMs: 60_000 });
    t.equal(r.code, 0, `${flag} exits 0`);
    t.equal(r.stdout.trim(), version, `${flag} prints ${version}`);
  }
});

t.test("the compiled CLI (bin/vxtun.js) prints the same version", async (t) => {
  if (!existsSync(join(REPO, "dist/cli/main.js"))) {
    t.plan(0, "no dist/: run `npm run build` first");
    return;
  }
  const r = await run([process.execPath, join(REPO, "bin/vxtun.js"), "--version"]);
  t.equal(r.code, 0);
  t.equal(r.stdout.trim(), version);
});
