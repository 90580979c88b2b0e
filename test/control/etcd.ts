// A real etcd (Debian's etcd-server) for agent tests, inside a namespace the test
// created: it hangs off the lab's switch bridge at 198.18.0.254, where every node
// namespace reaches it and nothing outside the lab can (DESIGN.md §5).
import type { ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import type { NetnsLab } from "../../src/lab/netns.js";
import { runOk } from "../../src/lab/netns.js";
import { waitFor } from "./agents.js";

export const ETCD_BIN = "/usr/bin/etcd";
export const ETCD_IP = "198.18.0.254";
export const ETCD_URL = `http://${ETCD_IP}:2379`;

export function etcdMissing(): string | undefined {
  return existsSync(ETCD_BIN)
    ? undefined
    : `${ETCD_BIN} missing (Debian etcd-server; scripts/setup.sh installs it)`;
}

export class LabEtcd {
  private child: ChildProcess | undefined;
  private log = "";

  private constructor(
    private readonly lab: NetnsLab,
    readonly ns: string,
    private readonly dataDir: string,
  ) {}

  /** A namespace on the switch bridge with etcd's address; etcd not started yet. */
  static async create(lab: NetnsLab, switchNs: string, dataDir: string): Promise<LabEtcd> {
    const ns = await lab.addNs("etcd");
    await lab.veth(ns, "eth0", switchNs, "petcd", { cidrA: `${ETCD_IP}/24` });
    await runOk(["ip", "-n", switchNs, "link", "set", "petcd", "master", "br0"]);
    return new LabEtcd(lab, ns, dataDir);
  }

  async start(): Promise<void> {
    // Own namespace, so fixed ports cannot collide with anything; peer URL on loopback.
    const child = this.lab.spawn(this.ns, [
      ETCD_BIN,
      "--name=lab",
      `--data-dir=${this.dataDir}`,
      `--listen-client-urls=${ETCD_URL}`,
      `--advertise-client-urls=${ETCD_URL}`,
      "--listen-peer-urls=http://127.0.0.1:2380",
      "--initial-advertise-peer-urls=http://127.0.0.1:2380",
      "--initial-cluster=lab=http://127.0.0.1:2380",
      "--log-level=error",
    ]);
    // Drain its output: a full pipe would stall etcd.
    const keep = (d: Buffer) => {
      this.log = (this.log + d.toString()).slice(-8000);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    this.child = child;
    await waitFor(
      "etcd healthy",
      async () => {
        if (child.exitCode !== null) throw new Error(`etcd exited: ${this.log}`);
        return (await this.ctl(["endpoint", "health"])).code === 0;
      },
      15_000,
      100,
    );
  }

  /** SIGKILL, as a crash would; resolves once the process is gone. */
  async kill(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once("exit", r));
    c.kill("SIGKILL");
    await gone;
  }

  /** etcdctl (v3 API) inside the etcd namespace. */
  ctl(args: string[]) {
    return this.lab.exec(this.ns, [
      "env",
      "ETCDCTL_API=3",
      "etcdctl",
      `--endpoints=${ETCD_URL}`,
      "--command-timeout=2s",
      ...args,
    ]);
  }

  async ctlOk(args: string[]): Promise<string> {
    const r = await this.ctl(args);
    if (r.code !== 0) throw new Error(`etcdctl ${args.join(" ")}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** key -> value under a prefix. */
  async getPrefix(prefix: string): Promise<Map<string, string>> {
    const lines = (await this.ctlOk(["get", "--prefix", prefix])).split("\n");
    const out = new Map<string, string>();
    for (let i = 0; i + 1 < lines.length; i += 2) if (lines[i]) out.set(lines[i], lines[i + 1]);
    return out;
  }
}
