// `vxtun install-cni`: put the shim into the CNI bin dir as `vxtun` and write the
// conflist. Both are written to a temporary name and renamed, so a runtime never sees
// a half-written plugin or configuration.
import { chmodSync, copyFileSync, existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { DEFAULT_DATA_DIR, DEFAULT_STATE_FILE } from "./config.js";

export interface InstallOptions {
  binDir: string;
  confDir: string;
  /** The built shim (default dist/cni/vxtun-cni beside this module's dist folder). */
  shim?: string;
  stateFile?: string;
  agentSocket?: string;
  cniVersion?: string;
  name?: string;
  /** IPAM directory (default /var/lib/cni/networks). */
  dataDir?: string;
}

/**
 * The conflist install-cni writes: vxtun, then the reference portmap plugin (hostPort,
 * as flannel's kube-flannel.yml chains it; snat so a node reaches its own hostPorts).
 */
export function defaultConflist(o: Partial<InstallOptions> = {}): Record<string, unknown> {
  return {
    // 1.0.0: what libcni 1.1 (Debian 12) and the reference plugins understand; a 1.1.0
    // runtime may raise it to get GC and STATUS.
    cniVersion: o.cniVersion ?? "1.0.0",
    name: o.name ?? "vxtun",
    plugins: [
      {
        type: "vxtun",
        // The shim's slow path (no agent answering) runs nodePath on vxtunRoot's dist/cni/main.js.
        vxtunRoot: resolve(import.meta.dirname, "../.."),
        nodePath: process.execPath,
        stateFile: o.stateFile ?? DEFAULT_STATE_FILE,
        agentSocket: o.agentSocket ?? "/run/vxtun/cni.sock",
        mode: "bridge",
        hairpinMode: true,
        dataDir: o.dataDir ?? DEFAULT_DATA_DIR,
      },
      { type: "portmap", capabilities: { portMappings: true }, snat: true },
    ],
  };
}

export function installCni(o: InstallOptions): { plugin: string; conflist: string } {
  // dist/cni when built; src/cni when run from source (tsx), whose shim is in dist/cni.
  const here = import.meta.dirname;
  const shim =
    o.shim ??
    [resolve(here, "vxtun-cni"), resolve(here, "../../dist/cni/vxtun-cni")].find(existsSync) ??
    resolve(here, "vxtun-cni");
  if (!existsSync(shim)) {
    throw new Error(`no CNI shim at ${shim}: build it with 'npm run build:cni'`);
  }
  mkdirSync(o.binDir, { recursive: true });
  mkdirSync(o.confDir, { recursive: true });
  const plugin = join(o.binDir, "vxtun");
  copyFileSync(shim, `${plugin}.tmp`);
  chmodSync(`${plugin}.tmp`, 0o755);
  renameSync(`${plugin}.tmp`, plugin);
  const conflist = join(o.confDir, "10-vxtun.conflist");
  writeFileSync(`${conflist}.tmp`, `${JSON.stringify(defaultConflist(o), null, 2)}\n`);
  renameSync(`${conflist}.tmp`, conflist);
  return { plugin, conflist };
}
