// The processes a soak supervises: each node's agent (and the lab's etcd), restarted with
// the very command line and environment it ran with (read from /proc before it is
// stopped), as systemd or a DaemonSet would; and a node that joins a running lab.
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { controlCall } from "../api/client.js";
import { run } from "../system/exec.js";
import { linkSetMaster, routeReplace } from "../system/iproute.js";
import { type LabNode, type LabState, OUTSIDE_IP, waitFor } from "./lab.js";
import type { NetnsLab } from "./netns.js";

export interface ProcSpec {
  ns: string;
  argv: string[];
  env: Record<string, string>;
  log: string;
}

/** How a process was started, from /proc (it must still run). */
export function procSpec(pid: number, ns: string, log: string): ProcSpec {
  const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  const env: Record<string, string> = {};
  for (const kv of readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")) {
    const eq = kv.indexOf("=");
    if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return { ns, argv, env, log };
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A supervised process: its current pid, whether an exit is expected, what it did. */
export class Supervised {
  pid: number;
  child: ChildProcess | undefined;
  startedAt = Date.now();
  /** Set before we signal it; an exit without it is a crash. */
  expectExit = false;
  restarts = 0;

  constructor(
    readonly name: string,
    readonly spec: ProcSpec,
    pid: number,
    private readonly onCrash: (name: string, how: string) => void,
  ) {
    this.pid = pid;
  }

  get running(): boolean {
    if (this.child) return this.child.exitCode === null && this.child.signalCode === null;
    return alive(this.pid);
  }

  /** Called periodically: a process we did not stop that is gone has crashed. */
  check(): void {
    if (!this.expectExit && !this.child && !alive(this.pid)) {
      this.expectExit = true;
      this.onCrash(this.name, `pid ${this.pid} exited on its own`);
    }
  }

  /** Signal it and wait until it is gone (SIGKILL after `graceMs`); false if it had to be killed. */
  async stop(signal: NodeJS.Signals, graceMs = 10_000): Promise<boolean> {
    this.expectExit = true;
    if (!this.running) return true;
    process.kill(this.pid, signal);
    const deadline = Date.now() + graceMs;
    while (this.running && Date.now() < deadline) await sleep(10);
    if (!this.running) return true;
    process.kill(this.pid, "SIGKILL");
    while (this.running) await sleep(10);
    return false;
  }

  /** Start it again, same argv and environment, output appended to its log. */
  start(): void {
    const fd = openSync(this.spec.log, "a");
    const child = spawn("ip", ["netns", "exec", this.spec.ns, ...this.spec.argv], {
      detached: true,
      stdio: ["ignore", fd, fd],
      env: this.spec.env,
    });
    closeSync(fd);
    if (!child.pid) throw new Error(`could not restart ${this.name}`);
    child.unref();
    this.child = child;
    this.pid = child.pid;
    this.startedAt = Date.now();
    this.expectExit = false;
    this.restarts++;
    child.once("exit", (code, signal) => {
      if (!this.expectExit) {
        this.expectExit = true;
        this.onCrash(
          this.name,
          `pid ${child.pid} exited on its own (code ${code}, signal ${signal})`,
        );
      }
    });
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll every 20 ms until fn returns a value (errors count as not yet); throws after `ms`. */
export function until<T>(what: string, ms: number, fn: () => Promise<T | undefined>) {
  return waitFor(what, ms, fn, 20);
}

export interface AgentReport {
  subnet: string;
  vtepMac: string;
  publicIp: string;
  peers: { address: string; subnet: string; vtepMac?: string }[];
}

export function agentReport(node: LabNode, timeoutMs = 1000): Promise<AgentReport> {
  return controlCall(node.socket, "agent", {}, timeoutMs) as Promise<AgentReport>;
}

/**
 * A new machine on the lab's underlay switch with `address` (a recycled one, when a
 * node left): its namespace, eth0 on the switch, the sysctls and default route every
 * lab node has. Returns the node record, agent not started.
 */
export async function addLabNode(
  net: NetnsLab,
  s: LabState,
  name: string,
  address: string,
  port: string,
): Promise<LabNode> {
  const ns = await net.addNs(name);
  const sw = `${s.prefix}sw`;
  await net.veth(ns, "eth0", sw, port, { cidrA: `${address}/24` });
  await linkSetMaster(sw, port, "br0");
  await net.execOk(ns, [
    "sysctl",
    "-qw",
    "net.ipv4.ip_forward=1",
    "net.ipv4.conf.all.rp_filter=0",
    "net.ipv4.conf.default.rp_filter=0",
    "net.ipv6.conf.all.disable_ipv6=1",
    "net.ipv6.conf.default.disable_ipv6=1",
  ]);
  await routeReplace(ns, { dst: "default", via: OUTSIDE_IP });
  const nd = join(s.dir, name);
  mkdirSync(nd, { recursive: true });
  return {
    name,
    ns,
    address,
    socket: join(nd, "dataplane.sock"),
    cniSocket: join(nd, "cni.sock"),
    stateFile: join(nd, "subnet.env"),
    log: join(nd, "agent.log"),
    pid: 0,
  };
}

/** The per-node variables the lab gives an agent (see labUp), for node `n`. */
export function agentEnv(base: Record<string, string>, s: LabState, n: LabNode) {
  return {
    ...base,
    VXTUN_NAME: `${s.name}-${n.name}`,
    VXTUN_STATE_FILE: n.stateFile,
    VXTUN_CNI_SOCKET: n.cniSocket,
    VXTUN_PATHS_SOCKET: n.socket,
    VXTUN_PATHS_STATE: join(s.dir, n.name, "state"),
  };
}

/** etcdctl against the lab's etcd, from the switch namespace. */
export function labEtcdctl(s: LabState, args: string[]) {
  return run(
    [
      "ip",
      "netns",
      "exec",
      `${s.prefix}sw`,
      "env",
      "ETCDCTL_API=3",
      "etcdctl",
      "--endpoints",
      s.etcd?.endpoint ?? "",
      "--command-timeout=2s",
      ...args,
    ],
    { timeoutMs: 10_000 },
  );
}
