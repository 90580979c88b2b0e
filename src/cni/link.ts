// Links, addresses and routes for one attachment, through iproute2 with argv arrays.
// The plugin runs in the node's namespace ("here"); the pod's namespace is reached by
// path: `ip link add … peer … netns <path>` places the pod end directly (iproute2 opens
// a name containing '/' as a path), and `nsenter --net=<path> ip -batch -` configures it.
// nsenter is used rather than `ip netns attach` or a bind mount because it leaves nothing
// behind when the plugin dies, and accepts /run/netns/x and /proc/PID/ns/net alike.
import { createHash } from "node:crypto";
import { execArgv } from "../system/exec.js";
import { CniCode, CniError } from "./errors.js";

/** Host-side veth: "vx" + 11 hex of sha256(containerID + ifname) — 13 of 15 characters. */
export function hostVethName(containerId: string, ifname: string): string {
  return `vx${createHash("sha256")
    .update(containerId + ifname)
    .digest("hex")
    .slice(0, 11)}`;
}

/** Both MACs come from the same digest, so no query is needed to report them. */
export function vethMacs(containerId: string, ifname: string): { host: string; pod: string } {
  const d = createHash("sha256").update(`mac/${containerId}/${ifname}`).digest();
  const mac = (o: number) => {
    const b = [...d.subarray(o, o + 6)];
    b[0] = (b[0] & 0xfe) | 0x02; // unicast, locally administered
    return b.map((x) => x.toString(16).padStart(2, "0")).join(":");
  };
  return { host: mac(0), pod: mac(6) };
}

/** Link alias recording the attachment, so GC can find stale veths without a state store. */
export function attachmentAlias(containerId: string, ifname: string): string {
  return `vxtun/${containerId}/${ifname}`;
}

const BATCH_BAD = /[\s"'#\\]/;

function batchText(lines: readonly (readonly string[])[]): string {
  return `${lines
    .map((l) => {
      for (const tok of l) {
        if (tok === "" || BATCH_BAD.test(tok)) {
          throw new CniError(
            CniCode.dataplane,
            `unsafe token ${JSON.stringify(tok)} for ip -batch`,
          );
        }
      }
      return l.join(" ");
    })
    .join("\n")}\n`;
}

export interface BatchFailure {
  message: string;
}

/** `ip -batch -` (here, or inside the namespace at `netns`); undefined on success. */
export async function ipBatch(
  lines: readonly (readonly string[])[],
  netns?: string,
): Promise<BatchFailure | undefined> {
  if (lines.length === 0) return undefined;
  const argv = netns ? ["nsenter", `--net=${netns}`, "ip", "-batch", "-"] : ["ip", "-batch", "-"];
  const r = await execArgv(argv, { input: batchText(lines) });
  if (r.code === 0) return undefined;
  const message = r.stderr
    .split("\n")
    .filter((l) => l.trim() && !l.startsWith("Command failed"))
    .join("; ");
  return { message: message || `exit ${r.code}` };
}

export async function ipOk(
  lines: readonly (readonly string[])[],
  netns?: string,
  what = "ip",
): Promise<void> {
  const f = await ipBatch(lines, netns);
  if (f) throw new CniError(CniCode.dataplane, `${what}: ${f.message}`);
}

/** Run `ip -json …` here or in `netns`, parsed. */
export async function ipJson<T>(args: readonly string[], netns?: string): Promise<T | undefined> {
  const argv = netns
    ? ["nsenter", `--net=${netns}`, "ip", "-json", ...args]
    : ["ip", "-json", ...args];
  const r = await execArgv(argv);
  if (r.code !== 0) return undefined;
  return (r.stdout.trim() ? JSON.parse(r.stdout) : []) as T;
}

/** The node bridge with the gateway address; concurrent ADDs may race to create it. */
export async function ensureBridge(name: string, gatewayCidr: string, mtu: number): Promise<void> {
  const add = await ipBatch([["link", "add", name, "mtu", String(mtu), "type", "bridge"]]);
  if (add && !/File exists/.test(add.message)) {
    throw new CniError(CniCode.dataplane, `creating bridge ${name}: ${add.message}`);
  }
  await ipOk(
    [
      ["addr", "replace", gatewayCidr, "dev", name],
      ["link", "set", "dev", name, "up"],
    ],
    undefined,
    `bridge ${name}`,
  );
}

export async function deleteLink(name: string): Promise<void> {
  const f = await ipBatch([["link", "del", "dev", name]]);
  if (f && !/Cannot find device|does not exist/.test(f.message)) {
    throw new CniError(CniCode.dataplane, `deleting ${name}: ${f.message}`);
  }
}

export interface LinkJson {
  ifname: string;
  ifalias?: string;
  mtu: number;
  address?: string;
  master?: string;
  operstate?: string;
  addr_info?: { family: string; local: string; prefixlen: number }[];
}
