// IPAM. The section vxtun fills in itself (host-local over the node's subnet) is served
// in-process on host-local's on-disk format (host-local.ts): no process per call, same
// reservations. Any other section is delegated, as the reference bridge does
// (invoke.DelegateAdd): find the plugin named in `ipam.type` in CNI_PATH, run it with
// our environment and the network configuration on stdin, and read its result (or its
// error JSON) from stdout.
import { accessSync, constants, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { formatIpv4 } from "../encap/addr.js";
import { run } from "../system/exec.js";
import type { NetConf } from "./config.js";
import type { CniEnv } from "./env.js";
import { CniCode, CniError } from "./errors.js";
import { localAdd, localAdd6, localDel, localFind } from "./host-local.js";
import type { NodeState } from "./node-state.js";
import { type CniResult, cmpVersion, parseResult } from "./version.js";

function findPlugin(type: string, path: readonly string[]): string {
  for (const dir of path) {
    const p = join(dir, type);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not in this directory
    }
  }
  throw new CniError(CniCode.ipam, `failed to find plugin "${type}" in path [${path.join(" ")}]`);
}

/**
 * The IPAM section we hand over: the configured one, or host-local over the node's
 * subnet with the gateway reserved. `state` may be absent on DEL (agent gone): host-local
 * releases by container ID and ifname whatever the range, so a placeholder range works.
 */
export function ipamSection(conf: NetConf, state: NodeState | undefined): Record<string, unknown> {
  const given = conf.ipam ?? { type: "host-local" };
  if (given.type !== "host-local" || given.ranges !== undefined || given.subnet !== undefined) {
    return given;
  }
  const subnet = state ? `${formatIpv4(state.subnet.addr)}/${state.subnet.len}` : "169.254.0.0/16";
  const range: Record<string, string> = { subnet };
  if (state) range.gateway = formatIpv4(state.gateway);
  // Dual stack as the reference plugins configure it: a second range set for IPv6.
  const v6 = state?.ipv6;
  const ranges = v6 ? [[range], [{ subnet: v6.subnet, gateway: v6.gateway }]] : [[range]];
  return { ...given, ranges, dataDir: given.dataDir ?? conf.dataDir };
}

/**
 * host-local 1.1.x (Debian) knows specs up to 1.0.0; the IPAM result shape did not change
 * in 1.1.0, so a 1.1.0 configuration is handed to IPAM as 1.0.0 for ADD/CHECK/DEL.
 */
function ipamVersion(v: string): string {
  return cmpVersion(v, "1.0.0") > 0 ? "1.0.0" : v;
}

export async function delegate(
  command: "ADD" | "DEL" | "CHECK" | "GC",
  env: CniEnv,
  conf: NetConf,
  ipam: Record<string, unknown>,
  overrides: Record<string, string> = {},
): Promise<CniResult | undefined> {
  const plugin = findPlugin(String(ipam.type), env.path);
  const stdin = JSON.stringify({
    ...conf.raw,
    cniVersion: command === "GC" ? conf.cniVersion : ipamVersion(conf.cniVersion),
    ipam,
  });
  const r = await run([plugin], {
    input: stdin,
    env: { ...env.raw, CNI_COMMAND: command, ...overrides },
  });
  if (r.code !== 0) {
    let parsed: { code?: unknown; msg?: unknown; details?: unknown } | undefined;
    try {
      parsed = JSON.parse(r.stdout);
    } catch {
      parsed = undefined;
    }
    if (typeof parsed?.code === "number" && typeof parsed.msg === "string") {
      throw new CniError(
        parsed.code,
        `${ipam.type} ${command}: ${parsed.msg}`,
        typeof parsed.details === "string" ? parsed.details : "",
      );
    }
    throw new CniError(
      CniCode.ipam,
      `${ipam.type} ${command} failed (exit ${r.code})`,
      (r.stderr || r.stdout).trim(),
    );
  }
  if (command !== "ADD") return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(r.stdout);
  } catch {
    throw new CniError(CniCode.ipam, `${ipam.type} ADD printed no JSON result`, r.stdout.trim());
  }
  return parseResult(raw, `${ipam.type} result`);
}

/** host-local's leases: one file per address holding "containerID\r\nifname". */
export function hostLocalLeases(
  dir: string,
): { file: string; containerID: string; ifname: string }[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: { file: string; containerID: string; ifname: string }[] = [];
  for (const n of names) {
    if (!/^[0-9.]+$|:/.test(n)) continue; // addresses only, not "lock" or "last_reserved_ip.0"
    try {
      const [cid, ifn] = readFileSync(join(dir, n), "utf8").split(/\r?\n/);
      out.push({ file: n, containerID: cid.trim(), ifname: (ifn ?? "").trim() });
    } catch {
      // released while we looked
    }
  }
  return out;
}

/** Keys of an `ipam` section the in-process host-local serves; any other goes to the plugin. */
const BUILT_IN_KEYS = new Set(["type", "dataDir", "routes"]);

/** True when IPAM is ours in-process: host-local over the node subnet vxtun generates. */
export function builtInIpam(conf: NetConf): boolean {
  const g = conf.ipam ?? { type: "host-local" };
  return g.type === "host-local" && Object.keys(g).every((k) => BUILT_IN_KEYS.has(k));
}

/** host-local's directory for this network: <dataDir>/<network name>. */
function leaseDir(conf: NetConf): string {
  return join(String(conf.ipam?.dataDir ?? conf.dataDir), conf.name);
}

export async function ipamAdd(env: CniEnv, conf: NetConf, state: NodeState): Promise<CniResult> {
  if (!builtInIpam(conf)) {
    return (await delegate("ADD", env, conf, ipamSection(conf, state))) as CniResult;
  }
  const range = { subnet: state.subnet, gateway: state.gateway };
  const dir = leaseDir(conf);
  const ip = await localAdd(dir, env.containerId, env.ifname, range);
  const ips = [
    { address: `${formatIpv4(ip)}/${state.subnet.len}`, gateway: formatIpv4(state.gateway) },
  ];
  const v6 = state.ipv6;
  if (v6) {
    try {
      const ip6 = await localAdd6(dir, env.containerId, env.ifname, v6);
      ips.push({ address: `${ip6}/${v6.len}`, gateway: v6.gateway });
    } catch (e) {
      await localDel(dir, env.containerId, env.ifname); // both families or neither
      throw e;
    }
  }
  return parseResult({ cniVersion: "1.0.0", ips, routes: conf.ipam?.routes ?? [] }, "ipam");
}

/** Release (env.containerId, env.ifname)'s lease; `overrides` as in delegate(). */
export async function ipamDel(
  env: CniEnv,
  conf: NetConf,
  state: NodeState | undefined,
  overrides: Record<string, string> = {},
): Promise<void> {
  if (!builtInIpam(conf)) {
    await delegate("DEL", env, conf, ipamSection(conf, state), overrides);
    return;
  }
  const id = overrides.CNI_CONTAINERID ?? env.containerId;
  await localDel(leaseDir(conf), id, overrides.CNI_IFNAME ?? env.ifname);
}

export async function ipamCheck(env: CniEnv, conf: NetConf, state: NodeState): Promise<void> {
  if (!builtInIpam(conf)) {
    await delegate("CHECK", env, conf, ipamSection(conf, state));
    return;
  }
  for (const family of state.ipv6 ? ([4, 6] as const) : ([4] as const)) {
    if (localFind(leaseDir(conf), env.containerId, env.ifname, family) === undefined) {
      throw new CniError(
        CniCode.ipam,
        `host-local CHECK: no IPv${family} address reserved for ${env.containerId}/${env.ifname}`,
      );
    }
  }
}
