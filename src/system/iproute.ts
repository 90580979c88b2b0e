// Device configuration through iproute2 (`ip`, `bridge`): argv arrays only (never a
// shell string built from input), each command aimed at one namespace: "" = the one we
// run in (a dataplane started inside its node's namespace), a name = `-n <name>`, an
// absolute path (a pod's /proc/PID/ns/net) = `nsenter --net=<path>`, which leaves nothing
// behind if we die. The root namespace is only ever "" for a process that was started
// there on purpose (docs/network-safety.md). Failures reject with an IpError whose `kind` is read
// from iproute2's output here, once, so callers test a kind and never match its text.
// Light on purpose: the CNI plugin's slow path loads it on every call.
import { run } from "./exec.js";

const NS_NAME = /^[A-Za-z0-9_.-]+$/;
/** Tokens for `ip -batch`: it splits on whitespace and treats quotes and '#' specially. */
const BATCH_TOKEN_BAD = /[\s"'#\\]/;

function checkNs(ns: string): void {
  if (ns === "") return;
  // A path goes to nsenter as one argv element, so any absolute path is safe to pass.
  if (ns.startsWith("/")) return;
  if (!NS_NAME.test(ns) || ns === "." || ns === "..") {
    throw new Error(`invalid network namespace name ${JSON.stringify(ns)}`);
  }
}

/** What went wrong, as far as a caller needs to know to decide what to do next. */
export type IpErrorKind = "exists" | "not-found" | "permission" | "other";

// iproute2 does not translate its messages, and these are the kernel's strerror/extack
// texts it prints (test/system/iproute-errors.test.ts records real ones).
const EXISTS = /File exists|already assigned|already exists/;
const NOT_FOUND =
  /Cannot find device|does not exist|No such (?:file or directory|process|device)|Address not found|Cannot assign requested address/;
const PERMISSION = /Operation not permitted|Permission denied/;

/** The kind of an iproute2 (or nsenter) failure from its exit code and stderr. */
export function ipErrorKind(code: number, stderr: string): IpErrorKind {
  if (code === 127) return "other"; // never started: `ip` or `nsenter` missing
  if (EXISTS.test(stderr)) return "exists";
  if (NOT_FOUND.test(stderr)) return "not-found";
  if (PERMISSION.test(stderr)) return "permission";
  return "other";
}

export class IpError extends Error {
  readonly kind: IpErrorKind;
  constructor(
    readonly argv: readonly string[],
    readonly code: number,
    /** iproute2's own words, one line ("; " between lines of a batch). */
    readonly detail: string,
    stderr: string,
    /** Already known (netlink: from the errno), else read from `stderr`. */
    kind?: IpErrorKind,
  ) {
    super(`${argv.join(" ")}: ${detail}`);
    this.kind = kind ?? ipErrorKind(code, stderr);
  }
}

/** A `.catch()` handler that lets a failure of this kind through as undefined. */
export function unless(kind: IpErrorKind): (e: unknown) => undefined {
  return (e) => {
    if (e instanceof IpError && e.kind === kind) return undefined;
    throw e;
  };
}

async function iproute(
  tool: "ip" | "bridge",
  ns: string,
  args: readonly string[],
  input?: string,
): Promise<string> {
  checkNs(ns);
  const argv =
    ns === ""
      ? [tool, ...args]
      : ns.startsWith("/")
        ? ["nsenter", `--net=${ns}`, tool, ...args]
        : [tool, "-n", ns, ...args];
  const r = await run(argv, { input, timeoutMs: 15_000 });
  if (r.code === 0) return r.stdout;
  const detail = r.stderr
    .split("\n")
    .filter((l) => l.trim() && !l.startsWith("Command failed"))
    .join("; ");
  throw new IpError(argv, r.code, detail || `exit ${r.code}`, r.stderr);
}

/** `ip ...args` in `ns`; resolves to stdout, rejects with an IpError. */
export function ip(ns: string, args: readonly string[], input?: string): Promise<string> {
  return iproute("ip", ns, args, input);
}

/** `bridge ...args` in `ns` (FDB lives in iproute2's bridge tool). */
export function bridge(ns: string, args: readonly string[]): Promise<string> {
  return iproute("bridge", ns, args);
}

/** `ip -json ...` parsed. */
export async function ipJson<T = unknown>(ns: string, args: readonly string[]): Promise<T> {
  const stdout = await ip(ns, ["-json", ...args]);
  return (stdout.trim() ? JSON.parse(stdout) : []) as T;
}

/**
 * Many commands in one `ip -batch -` process; each command is an argv array. iproute2
 * stops at the first failure, and the IpError is that failure's.
 */
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

// ---- addresses ----

export async function addrAdd(ns: string, dev: string, cidr: string): Promise<void> {
  await ip(ns, ["addr", "add", cidr, "dev", dev]);
}

export async function addrReplace(ns: string, dev: string, cidr: string): Promise<void> {
  await ip(ns, ["addr", "replace", cidr, "dev", dev]);
}

// ---- routes ----

export interface RouteSpec {
  /** "10.244.1.0/24" or "default". */
  dst: string;
  dev?: string;
  via?: string;
  onlink?: boolean;
}

function routeArgs(r: RouteSpec): string[] {
  const a = [r.dst];
  if (r.via) a.push("via", r.via);
  if (r.dev) a.push("dev", r.dev);
  if (r.onlink) a.push("onlink");
  return a;
}

export async function routeReplace(ns: string, r: RouteSpec): Promise<void> {
  await ip(ns, ["route", "replace", ...routeArgs(r)]);
}

export async function routeDel(ns: string, r: RouteSpec): Promise<void> {
  await ip(ns, ["route", "del", ...routeArgs(r)]);
}

// ---- neighbours ----

export interface NeighSpec {
  dev: string;
  /** IPv4 address. */
  addr: string;
  /** Link-layer address "aa:bb:cc:dd:ee:ff". */
  lladdr: string;
}

/** A permanent entry, as flanneld writes them. */
export async function neighReplace(ns: string, n: NeighSpec): Promise<void> {
  await ip(ns, ["neigh", "replace", n.addr, "lladdr", n.lladdr, "dev", n.dev, "nud", "permanent"]);
}
