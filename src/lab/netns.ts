// Network namespaces for labs and tests. docs/network-safety.md is a hard rule here: every
// namespace and link carries a per-run prefix, nothing touches the root namespace
// beyond creating/deleting our own namespaces, and cleanup runs on success, failure
// and interruption alike. Everything goes through iproute2 with argv arrays — never
// a shell string — so names from input cannot inject commands.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { type RunOptions, run, runOk } from "../system/exec.js";
import { addrAdd, ip, ipJson, linkAddVeth, linkSetMtu, linkSetUp } from "../system/iproute.js";

/** Every vxtun lab/test namespace starts with this, so `lab down --all` can find them. */
const NS_PREFIX = "vxt-";

/** Why this process cannot run namespace tests, or undefined when it can. */
export function netnsUnavailableReason(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root (network namespaces, TUN/TAP devices)";
  if (!existsSync("/dev/net/tun")) return "needs /dev/net/tun";
  return undefined;
}

/** Minimal view of a tap Test, so this module does not depend on tap. */
interface TestLike {
  teardown: (fn: () => unknown) => void;
}

/** Skip a test (with the reason) when it cannot create namespaces; returns true if skipped. */
export function skipUnlessRoot(t: { plan: (n: number, comment?: string) => void }): boolean {
  const why = netnsUnavailableReason();
  if (why) {
    // tap: a plan of 0 with a comment marks the test as skipped, with the reason shown.
    t.plan(0, `skipped: ${why}`);
    return true;
  }
  return false;
}

export interface VethOptions {
  cidrA?: string;
  cidrB?: string;
  mtu?: number;
  up?: boolean;
}

const live = new Set<NetnsLab>();
let hooksInstalled = false;

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  const sync = () => {
    for (const lab of live) lab.cleanupSync();
  };
  process.on("exit", sync);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(sig, () => {
      sync();
      process.kill(process.pid, sig);
    });
  }
}

/**
 * A set of namespaces sharing one per-run prefix. Create with NetnsLab.create(t) in a
 * test (cleanup is registered with t.teardown) or NetnsLab.create() in a lab.
 */
export class NetnsLab {
  readonly prefix: string;
  readonly namespaces: string[] = [];
  private readonly children = new Set<ChildProcess>();
  private closed = false;

  private constructor(prefix: string) {
    this.prefix = prefix;
  }

  static async create(t?: TestLike, prefix?: string): Promise<NetnsLab> {
    const lab = new NetnsLab(prefix ?? `${NS_PREFIX}${randomBytes(3).toString("hex")}-`);
    live.add(lab);
    installExitHooks();
    t?.teardown(() => lab.cleanup());
    return lab;
  }

  /** Create namespace prefix+name with loopback up; returns its full name. */
  async addNs(name: string): Promise<string> {
    const full = `${this.prefix}${name}`;
    validateName(full, "namespace");
    await ip("", ["netns", "add", full]);
    this.namespaces.push(full);
    await linkSetUp(full, "lo");
    return full;
  }

  /** A veth pair with one end in each namespace, optionally addressed and up. */
  async veth(nsA: string, nameA: string, nsB: string, nameB: string, o: VethOptions = {}) {
    validateName(nameA, "link");
    validateName(nameB, "link");
    // Created directly inside nsA so the root namespace never sees the link.
    await linkAddVeth(nsA, nameA, nameB, nsB);
    for (const [ns, dev, cidr] of [
      [nsA, nameA, o.cidrA],
      [nsB, nameB, o.cidrB],
    ] as const) {
      if (o.mtu) await linkSetMtu(ns, dev, o.mtu);
      if (cidr) await addrAdd(ns, dev, cidr);
      if (o.up !== false) await linkSetUp(ns, dev);
    }
  }

  /** Run argv inside a namespace. */
  exec(ns: string, argv: readonly string[], opts: RunOptions = {}) {
    return run(["ip", "netns", "exec", ns, ...argv], opts);
  }

  execOk(ns: string, argv: readonly string[], opts: RunOptions = {}) {
    return runOk(["ip", "netns", "exec", ns, ...argv], opts);
  }

  /** Start a long-running process inside a namespace; killed at cleanup. */
  spawn(ns: string, argv: readonly string[]): ChildProcess {
    const child = spawn("ip", ["netns", "exec", ns, ...argv], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.children.add(child);
    child.once("exit", () => this.children.delete(child));
    return child;
  }

  /**
   * Hand the namespaces over to something longer-lived (a lab that outlives the
   * command): this process will no longer delete them at exit.
   */
  detach(): void {
    live.delete(this);
    this.closed = true;
  }

  /** Delete the given namespaces, killing what still runs inside them. */
  static removeNamespaces(names: readonly string[]): Promise<void> {
    return deleteNamespaces(names);
  }

  async cleanup(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    live.delete(this);
    for (const c of this.children) c.kill("SIGKILL");
    this.children.clear();
    await deleteNamespaces(this.namespaces);
    // Processes run with `ip netns exec` keep a namespace alive only while they run;
    // deleting the name is enough once they are gone.
  }

  /** For process exit hooks, where only synchronous work runs. */
  cleanupSync(): void {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.children) c.kill("SIGKILL");
    for (const ns of this.namespaces) {
      try {
        execFileSync("ip", ["netns", "del", ns], { stdio: "ignore" });
      } catch {
        // already gone
      }
    }
  }
}

async function deleteNamespaces(names: readonly string[]): Promise<void> {
  for (const ns of names) {
    // Kill anything still running inside (e.g. iperf3 started by a failed test).
    const pids = await ip("", ["netns", "pids", ns]).catch(() => "");
    for (const pid of pids.split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        // raced with its exit
      }
    }
    await ip("", ["netns", "del", ns]).catch(() => undefined); // already gone
  }
}

/** Every namespace whose name starts with NS_PREFIX (leftovers of any run). */
export async function listLabNamespaces(): Promise<string[]> {
  const list = await ipJson<{ name: string }[]>("", ["netns", "list"]).catch(() => []);
  return list.map((n) => n.name).filter((n) => n.startsWith(NS_PREFIX));
}

/** Remove every vxtun namespace (and with it every link inside): `vxtun lab down --all`. */
export async function removeAllLabNamespaces(): Promise<string[]> {
  const names = await listLabNamespaces();
  await deleteNamespaces(names);
  return names;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function validateName(name: string, what: string): void {
  if (!NAME_RE.test(name) || name.length > (what === "link" ? 15 : 64)) {
    throw new Error(
      `invalid ${what} name "${name}": use letters, digits, '-', '_' or '.', at most ${what === "link" ? 15 : 64} characters`,
    );
  }
}

/**
 * IPv6 for the overlay inside a node namespace (labs build their nodes without it): on
 * for what the agent and the CNI plugin create there (bridge, pod veths, the overlay
 * device), forwarding on. `underlayDev`, when given, stays without IPv6, so an IPv4
 * underlay carries no router solicitations or MLD reports.
 */
export async function enableOverlayIpv6(ns: string, underlayDev?: string): Promise<void> {
  const set = [
    "net.ipv6.conf.all.disable_ipv6=0",
    "net.ipv6.conf.default.disable_ipv6=0",
    ...(underlayDev ? [`net.ipv6.conf.${underlayDev}.disable_ipv6=1`] : []),
    "net.ipv6.conf.all.forwarding=1",
  ];
  for (const kv of set) await runOk(["ip", "netns", "exec", ns, "sysctl", "-qw", kv]);
}
