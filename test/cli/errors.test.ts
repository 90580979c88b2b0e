// Bad input to the CLI, none of which needs root: each case exits 1 with one line on
// stderr that names the problem (a config field, a missing file or instance, an
// unknown lab mode or bench path). The cases call the CLI's main() in this process
// (a process each would cost a tsx start-up per case); one runs as a real process.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { main } from "../../src/cli/main.js";
import { run } from "../../src/system/exec.js";
import { CLI } from "../fixtures/vxtun.js";

const dir = mkdtempSync(join(tmpdir(), "vxtun-cli-errors-"));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** A config file with `text` in the test's directory. */
function config(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

const cases: [string, string[], RegExp][] = [
  [
    "a bad address names the config field",
    ["run", "--config", config("address.yaml", "mode: vxlan\nlocal: { address: 198.18.0.300 }\n")],
    /local\.address: expected a dotted-quad IPv4 address/,
  ],
  [
    "an unknown mode in the config",
    ["run", "--config", config("mode.yaml", "mode: gre\nlocal: { address: 198.18.0.1 }\n")],
    /^vxtun: .*mode: /,
  ],
  [
    "a config file that is not there",
    ["run", "--config", "/nonexistent.yaml"],
    /^vxtun: cannot read config \/nonexistent\.yaml: ENOENT/,
  ],
  [
    "no instance behind the socket",
    ["--socket", "/nonexistent.sock", "stats"],
    /^vxtun: no vxtun instance at \/nonexistent\.sock: start one/,
  ],
  [
    "an unknown lab mode",
    ["lab", "up", "--mode", "gre"],
    /^vxtun: unknown mode "gre": choose vxlan, vxlan-l2, ipip/,
  ],
  [
    "a lab that is not up",
    ["lab", "ping", "--lab", "nosuchlab"],
    /^vxtun: no lab "nosuchlab" is up: start one with 'vxtun lab up'/,
  ],
  [
    "an unknown bench path",
    ["bench", "--paths", "gre"],
    /^vxtun: unknown path "gre": choose from underlay, /,
  ],
  [
    "an MTU that is not a number",
    ["mtu-sweep", "--mtus", "1500,abc"],
    /^vxtun: an MTU must be a whole number/,
  ],
];

/** The CLI's exit code and what it wrote to stderr, run in this process. */
async function cli(argv: string[]): Promise<{ code: number; stderr: string }> {
  const write = process.stderr.write;
  let stderr = "";
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  process.exitCode = 0;
  try {
    await main([process.execPath, "vxtun", ...argv]);
  } finally {
    process.stderr.write = write;
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = 0;
  return { code, stderr };
}

for (const [name, argv, re] of cases) {
  t.test(name, async (t) => {
    const r = await cli(argv);
    t.equal(r.code, 1, `vxtun ${argv.join(" ")} exits 1`);
    t.equal(r.stderr.trim().split("\n").length, 1, "one line");
    t.match(r.stderr, re);
  });
}

t.test("as a process: exit status 1 and the one line on stderr", async (t) => {
  const [, argv, re] = cases[4];
  const r = await run([...CLI, ...argv], { timeoutMs: 60_000 });
  t.equal(r.code, 1);
  t.equal(r.stderr.trim().split("\n").length, 1, "one line");
  t.match(r.stderr, re);
});
