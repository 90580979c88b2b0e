// The package as a user gets it: `npm pack`, `npm install -g` of the tarball into a
// temporary prefix (dependencies from the registry, the addon and the CNI shim built by
// the install script), then the installed `vxtun` runs a lab from outside the checkout.
// Root (the lab's namespaces) and the registry are needed. The tarball is packed from
// this checkout's build (`npm run build` first, as for the other CLI tests): packing
// with --ignore-scripts skips prepack's rebuild of dist/ under the tests running beside.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { skipUnlessRoot } from "../../src/lab/netns.js";
import { run } from "../../src/system/exec.js";
import { REPO } from "../fixtures/vxtun.js";

const LAB = "pkgtest";

t.test("npm pack, npm install -g, then the installed vxtun runs a lab", async (t) => {
  if (skipUnlessRoot(t)) return;
  if (!existsSync(join(REPO, "dist/cli/main.js"))) {
    t.plan(0, "no dist/: run `npm run build` first");
    return;
  }
  const tmp = mkdtempSync(join(tmpdir(), "vxtun-pkg-"));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const { version } = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as {
    version: string;
  };

  const pack = await run(["npm", "pack", REPO, "--ignore-scripts", "--pack-destination", tmp], {
    timeoutMs: 120_000,
  });
  t.equal(pack.code, 0, "npm pack", { stderr: pack.stderr });
  const tgz = join(tmp, `vxtun-${version}.tgz`);
  t.ok(existsSync(tgz), "the tarball is there");
  const list = await run(["tar", "tzf", tgz]);
  const files = list.stdout.split("\n");
  for (const f of ["bin/vxtun.js", "dist/cli/main.js", "dist/cni/main.js", "binding.gyp"]) {
    t.ok(files.includes(`package/${f}`), `ships ${f}`);
  }
  for (const f of ["src/io/native/addon.cc", "src/cni/shim/vxtun-cni.c", "LICENSE"]) {
    t.ok(files.includes(`package/${f}`), `ships ${f}`);
  }
  t.notOk(
    files.some((f) => f.startsWith("package/test/") || (f.endsWith(".ts") && !f.endsWith(".d.ts"))),
    "no tests or TypeScript sources",
  );
  t.notOk(files.includes("package/dist/cni/vxtun-cni"), "no prebuilt shim (built on install)");
  t.comment(`tarball ${(statSync(tgz).size / 1024).toFixed(0)} KiB, ${files.length - 1} files`);

  const prefix = join(tmp, "prefix");
  const started = Date.now();
  const install = await run(["npm", "install", "-g", "--prefix", prefix, tgz], {
    timeoutMs: 480_000,
  });
  t.equal(install.code, 0, "npm install -g", { stderr: install.stderr });
  t.comment(`npm install -g took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const root = join(prefix, "lib/node_modules/vxtun");
  t.ok(existsSync(join(root, "build/Release/vxtun_native.node")), "the addon was built");
  t.ok(existsSync(join(root, "dist/cni/vxtun-cni")), "the CNI shim was built");

  // From a folder unrelated to the checkout: nothing may resolve into it.
  const vxtun = (args: string[], timeoutMs = 120_000) =>
    run(["env", "-C", tmp, join(prefix, "bin/vxtun"), ...args], { timeoutMs });
  const v = await vxtun(["--version"]);
  t.equal(v.code, 0, "--version exits 0");
  t.equal(v.stdout.trim(), version, "the installed vxtun prints its version");

  // install-cni from the package: the conflist points the shim at the installed plugin.
  const cni = await vxtun([
    "install-cni",
    "--bin-dir",
    join(tmp, "cni-bin"),
    "--conf-dir",
    join(tmp, "cni-conf"),
  ]);
  t.equal(cni.code, 0, "install-cni", { stderr: cni.stderr });
  const conflist = JSON.parse(readFileSync(join(tmp, "cni-conf/10-vxtun.conflist"), "utf8")) as {
    plugins: { vxtunRoot: string }[];
  };
  t.equal(conflist.plugins[0]?.vxtunRoot, root, "the conflist names the installed package");

  t.teardown(async () => {
    await vxtun(["lab", "down", "--lab", LAB]);
  });
  const up = await vxtun(["lab", "up", "--nodes", "2", "--pods", "2", "--lab", LAB], 240_000);
  t.equal(up.code, 0, "lab up --nodes 2 --pods 2", { stderr: up.stderr });
  const ping = await vxtun(["lab", "ping", "--lab", LAB]);
  t.equal(ping.code, 0, "lab ping: every pod reaches every pod", { stdout: ping.stdout });
  t.match(ping.stdout, /12\/12 pairs reachable/);
  const down = await vxtun(["lab", "down", "--lab", LAB]);
  t.equal(down.code, 0, "lab down", { stderr: down.stderr });
});
