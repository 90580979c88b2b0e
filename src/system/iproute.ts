// Device configuration through iproute2, always as argv arrays (never a shell string
// built from input) and always with `-n <namespace>`: this module only configures
// namespaces it is told about (DESIGN.md §5: the root namespace is never changed).
import { execFile } from "node:child_process";

const NS_RE = /^[A-Za-z0-9_.-]+$/;
/** Tokens for `ip -batch`: it splits on whitespace and treats quotes and '#' specially. */
const BATCH_TOKEN_BAD = /[\s"'#\\]/;

function checkNs(ns: string): void {
  if (ns === "") return;
  if (!NS_RE.test(ns) || ns === "." || ns === "..") {
    throw new Error(`invalid network namespace name ${JSON.stringify(ns)}`);
  }
}

export interface IpResult {
  stdout: string;
  stderr: string;
}

/**
 * Run `ip -n <ns> ...args` (ns "" = the current namespace, for a dataplane that was
 * started inside its node's namespace); rejects with a one-line error naming the
 * command and stderr.
 */
export function ip(ns: string, args: readonly string[], input?: string): Promise<IpResult> {
  checkNs(ns);
  const argv = ns === "" ? [...args] : ["-n", ns, ...args];
  return new Promise((resolve, reject) => {
    const child = execFile(
      "ip",
      argv,
      { timeout: 15_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        if (err) {
          const why = String(stderr).trim().split("\n")[0] || err.message;
          reject(new Error(`ip ${argv.join(" ")}: ${why}`));
        } else {
          resolve({ stdout: String(stdout), stderr: String(stderr) });
        }
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** `ip -json ...` parsed. */
export async function ipJson<T = unknown>(ns: string, args: readonly string[]): Promise<T> {
  const { stdout } = await ip(ns, ["-json", ...args]);
  return (stdout.trim() ? JSON.parse(stdout) : []) as T;
}

/** Many commands in one `ip -batch -` process; each command is an argv array. */
export async function ipBatch(ns: string, commands: readonly (readonly string[])[]): Promise<void> {
  if (commands.length === 0) return;
  const lines = commands.map((cmd) => {
    for (const tok of cmd) {
      if (tok === "" || BATCH_TOKEN_BAD.test(tok)) {
        throw new Error(`ip -batch: unsafe token ${JSON.stringify(tok)} in "${cmd.join(" ")}"`);
      }
    }
    return cmd.join(" ");
  });
  await ip(ns, ["-batch", "-"], `${lines.join("\n")}\n`);
}

// ---- links ----

export interface LinkInfo {
  ifindex: number;
  ifname: string;
  mtu: number;
  operstate?: string;
  flags?: string[];
  address?: string;
  link_type?: string;
  master?: string;
}

export async function linkShow(ns: string, dev?: string): Promise<LinkInfo[]> {
  return ipJson<LinkInfo[]>(ns, dev ? ["link", "show", "dev", dev] : ["link", "show"]);
}

export async function linkSetUp(ns: string, dev: string): Promise<void> {
  await ip(ns, ["link", "set", "dev", dev, "up"]);
}

export async function linkSetDown(ns: string, dev: string): Promise<void> {
  await ip(ns, ["link", "set", "dev", dev, "down"]);
}

export async function linkSetMtu(ns: string, dev: string, mtu: number): Promise<void> {
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) throw new Error(`invalid MTU ${mtu}`);
  await ip(ns, ["link", "set", "dev", dev, "mtu", String(mtu)]);
}

export async function linkSetAddress(ns: string, dev: string, mac: string): Promise<void> {
  await ip(ns, ["link", "set", "dev", dev, "address", mac]);
}

export async function linkSetMaster(ns: string, dev: string, master: string | null): Promise<void> {
  await ip(ns, ["link", "set", "dev", dev, ...(master ? ["master", master] : ["nomaster"])]);
}

/** Move a link into another named namespace. */
export async function linkSetNetns(ns: string, dev: string, targetNs: string): Promise<void> {
  checkNs(targetNs);
  await ip(ns, ["link", "set", "dev", dev, "netns", targetNs]);
}

export async function linkDel(ns: string, dev: string): Promise<void> {
  await ip(ns, ["link", "del", "dev", dev]);
}

/** A veth pair created in `ns`; the peer optionally placed in `peerNs` directly. */
export async function linkAddVeth(
  ns: string,
  name: string,
  peer: string,
  peerNs?: string,
): Promise<void> {
  if (peerNs) checkNs(peerNs);
  await ip(ns, [
    "link",
    "add",
    name,
    "type",
    "veth",
    "peer",
    "name",
    peer,
    ...(peerNs ? ["netns", peerNs] : []),
  ]);
}

export async function linkAddBridge(ns: string, name: string): Promise<void> {
  await ip(ns, ["link", "add", name, "type", "bridge"]);
}

// ---- addresses ----

export async function addrAdd(ns: string, dev: string, cidr: string): Promise<void> {
  await ip(ns, ["addr", "add", cidr, "dev", dev]);
}

export async function addrReplace(ns: string, dev: string, cidr: string): Promise<void> {
  await ip(ns, ["addr", "replace", cidr, "dev", dev]);
}

export async function addrDel(ns: string, dev: string, cidr: string): Promise<void> {
  await ip(ns, ["addr", "del", cidr, "dev", dev]);
}

export async function addrFlush(ns: string, dev: string): Promise<void> {
  await ip(ns, ["addr", "flush", "dev", dev]);
}

export interface AddrInfo {
  ifname: string;
  addr_info: { family: string; local: string; prefixlen: number }[];
}

export async function addrShow(ns: string, dev?: string): Promise<AddrInfo[]> {
  return ipJson<AddrInfo[]>(ns, dev ? ["addr", "show", "dev", dev] : ["addr", "show"]);
}

// ---- routes ----

export interface RouteSpec {
  /** "10.244.1.0/24" or "default". */
  dst: string;
  dev?: string;
  via?: string;
  onlink?: boolean;
  src?: string;
  mtu?: number;
  metric?: number;
  table?: number;
}

function routeArgs(r: RouteSpec): string[] {
  const a = [r.dst];
  if (r.via) a.push("via", r.via);
  if (r.dev) a.push("dev", r.dev);
  if (r.onlink) a.push("onlink");
  if (r.src) a.push("src", r.src);
  if (r.metric !== undefined) a.push("metric", String(r.metric));
  if (r.table !== undefined) a.push("table", String(r.table));
  if (r.mtu !== undefined) a.push("mtu", String(r.mtu));
  return a;
}

export async function routeReplace(ns: string, r: RouteSpec): Promise<void> {
  await ip(ns, ["route", "replace", ...routeArgs(r)]);
}

export async function routeDel(ns: string, r: RouteSpec): Promise<void> {
  await ip(ns, ["route", "del", ...routeArgs(r)]);
}

export async function routeShow(ns: string): Promise<unknown[]> {
  return ipJson<unknown[]>(ns, ["route", "show"]);
}

// ---- neighbours and FDB ----

export interface NeighSpec {
  dev: string;
  /** IPv4 address. */
  addr: string;
  /** Link-layer address "aa:bb:cc:dd:ee:ff". */
  lladdr: string;
  /** Default "permanent". */
  nud?: "permanent" | "reachable" | "stale" | "noarp";
}

export async function neighReplace(ns: string, n: NeighSpec): Promise<void> {
  await ip(ns, [
    "neigh",
    "replace",
    n.addr,
    "lladdr",
    n.lladdr,
    "dev",
    n.dev,
    "nud",
    n.nud ?? "permanent",
  ]);
}

export async function neighDel(ns: string, dev: string, addr: string): Promise<void> {
  await ip(ns, ["neigh", "del", addr, "dev", dev]);
}

export interface FdbSpec {
  dev: string;
  mac: string;
  /** Remote VTEP IPv4 (vxlan devices). */
  dst?: string;
  /** "self" (the device's own table, e.g. vxlan) or "master" (the bridge). Default self. */
  where?: "self" | "master";
  permanent?: boolean;
}

function fdbArgs(f: FdbSpec): string[] {
  const a = [f.mac, "dev", f.dev];
  if (f.dst) a.push("dst", f.dst);
  a.push(f.where ?? "self");
  if (f.permanent) a.push("permanent");
  return a;
}

/** `bridge fdb append` (several entries per MAC, e.g. all-zero flood entries). */
export async function fdbAppend(ns: string, f: FdbSpec): Promise<void> {
  await bridge(ns, ["fdb", "append", ...fdbArgs(f)]);
}

export async function fdbReplace(ns: string, f: FdbSpec): Promise<void> {
  await bridge(ns, ["fdb", "replace", ...fdbArgs(f)]);
}

export async function fdbDel(ns: string, f: FdbSpec): Promise<void> {
  await bridge(ns, ["fdb", "del", ...fdbArgs(f)]);
}

/** `bridge -n <ns> ...` (FDB lives in the bridge tool of iproute2). */
export function bridge(ns: string, args: readonly string[]): Promise<IpResult> {
  checkNs(ns);
  const argv = ns === "" ? [...args] : ["-n", ns, ...args];
  return new Promise((resolve, reject) => {
    execFile("bridge", argv, { timeout: 15_000 }, (err, stdout, stderr) => {
      if (err) {
        const why = String(stderr).trim().split("\n")[0] || err.message;
        reject(new Error(`bridge ${argv.join(" ")}: ${why}`));
      } else {
        resolve({ stdout: String(stdout), stderr: String(stderr) });
      }
    });
  });
}
