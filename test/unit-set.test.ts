// `npm run test:unit` runs every test file except *.root.test.ts (package.json), so a
// file's name decides whether it needs root. This keeps the names honest: a file that
// creates namespaces, devices or vxtun nodes (the markers below) must be named
// .root.test.ts, else the unit run would execute it as root or skip it as not; and a
// .root.test.ts must skip each of its tests without root, else it holds unprivileged
// tests the unit run leaves out.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import t from "tap";
import { REPO } from "./fixtures/vxtun.js";

/** What only a test that needs root and network namespaces uses. */
const ROOT_MARKERS =
  /\b(skipUnlessRoot|netnsUnavailableReason|NetnsLab|cniTestEnv|withNetns|deviceInNs|startVxtun|vxtunPair|startAgent|LabEtcd)\b/;
/** How a root test skips without root (cniTestEnv, cniNode and skipUnlessEtcd end in skipUnlessRoot). */
const SKIPS = /\b(skipUnlessRoot|skipUnlessEtcd|cniTestEnv|cniNode)\(t\)/g;

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? e.name === "fixtures"
        ? []
        : testFiles(join(dir, e.name))
      : e.name.endsWith(".test.ts")
        ? [join(dir, e.name)]
        : [],
  );
}

const files = testFiles(join(REPO, "test"));

t.test("npm run test:unit leaves out the .root.test.ts files by name", (t) => {
  const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8"));
  t.match(pkg.scripts["test:unit"], /^tap .*--exclude='\*\*\/\*\.root\.test\.ts'/);
  t.end();
});

t.test("a test file that needs root is named .root.test.ts", (t) => {
  for (const file of files) {
    if (file.endsWith(".root.test.ts") || file === import.meta.filename) continue;
    const marker = ROOT_MARKERS.exec(readFileSync(file, "utf8"))?.[1];
    t.equal(marker, undefined, `${relative(REPO, file)}: no root marker`);
  }
  t.end();
});

t.test("every test in a .root.test.ts skips without root", (t) => {
  const roots = files.filter((f) => f.endsWith(".root.test.ts"));
  t.ok(roots.length > 10, `${roots.length} root test files`);
  for (const file of roots) {
    const text = readFileSync(file, "utf8");
    const tests = text.match(/\bt\.test\(/g)?.length ?? 0;
    const skips = text.match(SKIPS)?.length ?? 0;
    t.ok(tests > 0 && skips >= tests, `${relative(REPO, file)}: ${skips} skips for ${tests} tests`);
  }
  t.end();
});
