// The CNI shim has no build-machine paths in it: copied to another folder (as to another
// host's /opt/cni/bin), its slow path finds Node and the plugin at run time from the
// conflist (vxtunRoot, nodePath, as `vxtun install-cni` writes them) or $PATH, and when
// they are missing it answers with the spec's error JSON saying what is missing.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import t from "tap";
import { ensureCniBuilt, REPO, SHIM } from "../fixtures/cni.js";

ensureCniBuilt();
const dir = mkdtempSync(join(tmpdir(), "vxtun-shim-"));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const shim = join(dir, "opt-cni-bin", "vxtun");
mkdirSync(dirname(shim));
copyFileSync(SHIM, shim);

// Another package root: its dist/ is the build's, under another name (the checkout's own
// dist/ stays where it is for the tests running beside this one).
const root = join(dir, "usr-lib-vxtun");
mkdirSync(root);
symlinkSync(join(REPO, "dist"), join(root, "dist"));

const call = (conf: Record<string, unknown>, env: Record<string, string> = {}) => {
  const r = spawnSync(shim, [], {
    input: JSON.stringify({
      cniVersion: "1.0.0",
      name: "net",
      type: "vxtun",
      agentSocket: join(dir, "nobody.sock"),
      ...conf,
    }),
    env: { CNI_COMMAND: "VERSION", PATH: process.env.PATH ?? "", ...env },
    encoding: "utf8",
  });
  return { code: r.status, out: JSON.parse(r.stdout) as Record<string, unknown> };
};

t.test("no build path is compiled into the binary", async (t) => {
  t.notOk(readFileSync(SHIM).includes(REPO), `the shim does not contain ${REPO}`);
});

t.test("the slow path runs the plugin under the conflist's vxtunRoot", async (t) => {
  const r = call({ vxtunRoot: root, nodePath: process.execPath });
  t.equal(r.code, 0);
  t.ok(Array.isArray(r.out.supportedVersions), "the Node plugin answered VERSION");
  const onPath = call({ vxtunRoot: root }, { PATH: dirname(process.execPath) });
  t.equal(onPath.code, 0, "node found on $PATH without nodePath");
});

t.test("missing pieces: the spec's error (code 11) naming what is missing", async (t) => {
  const cases: [string, Record<string, unknown>, Record<string, string>, RegExp][] = [
    ["no vxtunRoot, nothing beside it", {}, {}, /no "vxtunRoot".*no main\.js is beside/],
    ["vxtunRoot moved away", { vxtunRoot: join(dir, "gone") }, {}, /gone\/dist\/cni\/main\.js/],
    ["no node on PATH", { vxtunRoot: root }, { PATH: join(dir, "empty") }, /no node on PATH/],
    ["nodePath wrong", { vxtunRoot: root, nodePath: "/nonexistent/node" }, {}, /nodePath/],
  ];
  for (const [what, conf, env, details] of cases) {
    const r = call({ ...conf, cniVersion: "0.4.0" }, env);
    t.equal(r.code, 1, `${what}: exit 1`);
    t.equal(r.out.code, 11, `${what}: code 11 (try again later: the agent may come up)`);
    t.equal(r.out.cniVersion, "0.4.0", `${what}: the config's cniVersion`);
    t.match(r.out.msg, /does not answer on .*nobody\.sock/, `${what}: msg names the socket`);
    t.match(r.out.details, details, `${what}: details say what is missing`);
  }
});
