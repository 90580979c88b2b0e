// `vxtun lab soak`: a lab under a seeded random schedule of faults (soak-schedule.ts) while
// long-lived pods ping each other, then an audit of what is left (soak-check.ts) and a
// JSON report (soak-report.ts). Layout: nodes n1..n3 carry one long-lived pod each,
// pinging round the ring; n1's agent is never touched, so its process shows whether
// memory stays flat; the last node is the churn node that leaves and is replaced.
import { spawnSync } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { subnetKey } from "../control/flannel.js";
import { run } from "../system/exec.js";
import {
  cniPluginCommand,
  type LabMode,
  type LabNode,
  type LabPod,
  type LabState,
  labDown,
  labUp,
  runCni,
  saveLab,
} from "./lab.js";
import { NetnsLab } from "./netns.js";
import { auditNode, type NodeAudit, type Peer } from "./soak-check.js";
import {
  addLabNode,
  agentEnv,
  agentReport,
  labEtcdctl,
  procSpec,
  Supervised,
  sleep,
  until,
} from "./soak-nodes.js";
import {
  cpuMsOf,
  heapOf,
  type MemorySample,
  PingProbe,
  type PingResult,
  rssOf,
} from "./soak-probes.js";
import {
  buildReport,
  type FaultRecord,
  type RestartRecord,
  type SoakReport,
} from "./soak-report.js";
import { type FaultKind, makeSchedule, prng, type ScheduledFault } from "./soak-schedule.js";

export interface SoakOptions {
  lab: string;
  minutes: number;
  seed: number;
  store: "file" | "etcd";
  mode?: LabMode;
  /** Keep the lab up afterwards (to look around). */
  keep?: boolean;
  onProgress?: (msg: string) => void;
}

const METRICS = "127.0.0.1:9180";
const NODES = 4;
/** Churn pods per node at most (a /24 never fills, the lab stays light). */
const MAX_CHURN_PODS = 4;
const READY_MS = 60_000;

export class Soak {
  readonly faults: FaultRecord[] = [];
  readonly restarts: RestartRecord[] = [];
  readonly problems: string[] = [];
  readonly crashes: string[] = [];
  readonly memory: MemorySample[] = [];
  readonly cni = { add: 0, addFailed: 0, del: 0, delFailed: 0, unreachable: 0 };
  readonly agents = new Map<string, Supervised>();
  etcd: Supervised | undefined;
  /** Each node's subnet when it first came up: a restart must keep it. */
  readonly subnets = new Map<string, string>();
  leasesLost = 0;
  private podSeq = 0;
  private nodeSeq = NODES;
  private storeDown = false;
  private outage: Promise<void> = Promise.resolve();
  private readonly rnd: () => number;

  private constructor(
    readonly o: SoakOptions,
    readonly s: LabState,
    readonly net: NetnsLab,
    readonly t0: number,
  ) {
    this.rnd = prng(o.seed ^ 0x5eed);
  }

  private log(msg: string): void {
    const t = ((Date.now() - this.t0) / 1000).toFixed(1).padStart(6);
    this.o.onProgress?.(`[${t}s] ${msg}`);
  }

  private problem(msg: string): void {
    this.problems.push(msg);
    this.log(`PROBLEM: ${msg}`);
  }

  static async run(o: SoakOptions): Promise<SoakReport> {
    const load0 = loadavg();
    const s = await labUp({
      name: o.lab,
      nodes: NODES,
      pods: 1,
      mode: o.mode ?? "vxlan",
      store: o.store,
      agentConfig: { metrics: { address: METRICS } },
      onProgress: (m) => o.onProgress?.(`lab: ${m}`),
    });
    const net = await NetnsLab.create(undefined, s.prefix);
    net.detach(); // the lab owns its namespaces; labDown removes them
    const soak = new Soak(o, s, net, Date.now());
    // Interrupted (the lab's exit hooks re-raise the signal, so only synchronous work
    // runs): make the store writable again, so that 'vxtun lab down' can remove it.
    const interrupted = () => {
      if (s.store === "file") for (const d of soak.storeDirs()) spawnSync("chattr", ["-i", d]);
      process.stderr.write(`soak interrupted: 'vxtun lab down --lab ${s.name}' removes the lab\n`);
    };
    process.once("SIGINT", interrupted);
    process.once("SIGTERM", interrupted);
    try {
      return await soak.main(load0);
    } finally {
      process.off("SIGINT", interrupted);
      process.off("SIGTERM", interrupted);
      for (const a of soak.agents.values()) a.expectExit = true;
      if (soak.etcd) soak.etcd.expectExit = true;
      await soak.cleanupStore();
      if (!o.keep) await labDown(s.name).catch(() => undefined);
    }
  }

  private async main(load0: number[]): Promise<SoakReport> {
    const { s, o } = this;
    for (const n of s.nodes) this.adopt(n);
    if (s.etcd) {
      const spec = procSpec(s.etcd.pid, `${s.prefix}sw`, join(s.dir, "etcd.log"));
      this.etcd = new Supervised("etcd", spec, s.etcd.pid, (n, how) => this.crash(n, how));
    }
    for (const n of s.nodes) this.subnets.set(n.name, (await agentReport(n)).subnet);
    const longLived = s.pods.filter((p) => Number(p.node.slice(1)) < NODES);
    const probes = longLived.map((p, i) => {
      const q = longLived[(i + 1) % longLived.length];
      return new PingProbe(`${p.name}>${q.name}`, p.ns, q.ip);
    });
    const watch = setInterval(() => {
      for (const a of this.agents.values()) a.check();
      this.etcd?.check();
    }, 250);
    const sampler = setInterval(() => void this.sampleMemory(), 10_000);
    void this.sampleMemory();
    const durationMs = o.minutes * 60_000;
    const schedule = makeSchedule({ seed: o.seed, durationMs });
    this.log(`${schedule.length} faults over ${o.minutes} min, seed ${o.seed}`);
    let pings: PingResult[] = [];
    try {
      for (const f of schedule) {
        const wait = this.t0 + f.at - Date.now();
        if (wait > 0) await sleep(wait);
        if (this.crashes.length > 0) break;
        await this.inject(f).catch((e: Error) => this.problem(`${f.kind}: ${e.message}`));
      }
      const left = this.t0 + durationMs - Date.now();
      if (left > 0) await sleep(left);
      await this.outage;
      this.log("faults done; settling");
      await this.settle();
      await this.sampleMemory();
    } finally {
      clearInterval(sampler);
      clearInterval(watch);
      pings = await Promise.all(probes.map((p) => p.stop()));
    }
    const audits = await this.audit();
    await this.countLeases();
    return buildReport({
      options: o,
      t0: this.t0,
      load: [load0, loadavg()],
      faults: this.faults,
      restarts: this.restarts,
      pings,
      longLived: longLived.map((p) => ({ name: p.name, node: p.node })),
      audits,
      memory: this.memory,
      leasesLost: this.leasesLost,
      crashes: [...this.crashes],
      problems: [...this.problems],
      cni: { ...this.cni },
    });
  }

  private crash(name: string, how: string): void {
    this.crashes.push(`${name}: ${how} at +${((Date.now() - this.t0) / 1000).toFixed(1)} s`);
    this.log(`CRASH ${name}: ${how}`);
  }

  private adopt(n: LabNode): void {
    const spec = procSpec(n.pid, n.ns, n.log);
    this.agents.set(n.name, new Supervised(n.name, spec, n.pid, (x, how) => this.crash(x, how)));
  }

  private node(name: string): LabNode {
    const n = this.s.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  /** The churn node: the newest, last in the list. */
  private get churnNode(): LabNode {
    return this.s.nodes[this.s.nodes.length - 1];
  }

  private pickOf<T>(xs: readonly T[], r: number): T {
    return xs[Math.min(xs.length - 1, Math.floor(r * xs.length))];
  }

  private async inject(f: ScheduledFault): Promise<void> {
    const rec: FaultRecord = { kind: f.kind, start: Date.now(), end: 0 };
    this.faults.push(rec);
    const restartable = this.s.nodes.filter((n) => n.name !== "n1");
    const churnPods = this.s.pods.filter((p) => !/^n[1-3]-p1$/.test(p.name));
    try {
      switch (f.kind) {
        case "cni-add": {
          const n = this.pickOf(this.s.nodes, f.pick);
          rec.node = n.name;
          if (this.s.pods.filter((p) => p.node === n.name).length > MAX_CHURN_PODS) {
            rec.note = "node full: deleted one instead";
            const victim = this.s.pods.filter((p) => p.node === n.name && !/-p1$/.test(p.name));
            if (victim.length) await this.podDel(victim[0], false);
          } else await this.podAdd(n);
          break;
        }
        case "cni-del":
        case "cni-del-netns-gone": {
          if (churnPods.length === 0) {
            rec.note = "no pod to delete: one added first";
            await this.podAdd(this.pickOf(this.s.nodes, f.pick));
          }
          const pool = this.s.pods.filter((p) => !/^n[1-3]-p1$/.test(p.name));
          if (pool.length === 0) break;
          const p = this.pickOf(pool, f.pick);
          rec.node = p.node;
          await this.podDel(p, f.kind === "cni-del-netns-gone");
          break;
        }
        case "cni-add-agent-killed": {
          const n = this.pickOf(restartable, f.pick);
          rec.node = n.name;
          // Mostly SIGKILL (a crash mid-ADD); sometimes SIGTERM (a stop must let it finish).
          const signal = this.rnd() < 0.7 ? "SIGKILL" : "SIGTERM";
          rec.note = signal;
          await this.podAdd(n, { afterMs: Math.floor(this.rnd() * 150), signal });
          break;
        }
        case "agent-sigkill":
        case "agent-sigterm": {
          const n = this.pickOf(restartable, f.pick);
          rec.node = n.name;
          await this.restartAgent(n, f.kind === "agent-sigkill" ? "SIGKILL" : "SIGTERM", f.kind);
          break;
        }
        case "store-outage":
          if (this.storeDown) {
            this.faults.pop(); // one outage at a time: this one is not injected
            return;
          }
          rec.node = this.s.store;
          this.outage = this.storeOutage(f.durationMs ?? 5000, rec);
          return; // runs in the background; its record ends when the store is back
        case "node-replace":
          rec.node = this.churnNode.name;
          await this.replaceNode(f.pick < 0.5, rec);
          break;
      }
    } finally {
      if (f.kind !== "store-outage") rec.end = Date.now();
    }
  }

  private cniConf(n: LabNode) {
    return {
      cniVersion: "1.0.0",
      name: `vxtun-${this.s.name}`,
      type: "vxtun",
      stateFile: n.stateFile,
      agentSocket: n.cniSocket,
      dataDir: join(this.s.dir, n.name, "ipam"),
    };
  }

  private cniCall(n: LabNode, cmd: "ADD" | "DEL", id: string, ns: string) {
    return runCni(n.ns, cniPluginCommand(), cmd, id, ns, this.cniConf(n));
  }

  /** DEL as a runtime does it: retried until it succeeds (it must, eventually). */
  private async runtimeDel(n: LabNode, id: string, ns: string): Promise<void> {
    for (let i = 0; ; i++) {
      try {
        await this.cniCall(n, "DEL", id, ns);
        this.cni.del++;
        return;
      } catch (e) {
        this.cni.delFailed++;
        this.problem(`CNI DEL ${id}: ${(e as Error).message.split("\n")[0]}`);
        if (i >= 4) throw e;
        await sleep(1000);
      }
    }
  }

  /**
   * A pod through CNI ADD; with `kill`, the node's agent gets the signal that long into
   * the ADD and is restarted (a failed ADD is then cleaned up by DEL, as runtimes do).
   */
  private async podAdd(
    n: LabNode,
    kill?: { afterMs: number; signal: NodeJS.Signals },
  ): Promise<void> {
    const name = `${n.name}-c${++this.podSeq}`;
    const ns = await this.net.addNs(name);
    const containerId = `${this.s.name}-${name}`;
    const add = this.cniCall(n, "ADD", containerId, ns).then(
      (out) => ({ ok: true as const, out }),
      (e: Error) => ({ ok: false as const, err: e.message }),
    );
    if (kill) {
      await sleep(kill.afterMs);
      await this.restartAgent(n, kill.signal, "cni-add-agent-killed");
    }
    const r = await add;
    if (!r.ok) {
      if (!kill) {
        this.cni.addFailed++;
        this.problem(`CNI ADD ${name}: ${r.err.split("\n")[0]}`);
      }
      await this.runtimeDel(n, containerId, ns);
      await NetnsLab.removeNamespaces([ns]);
      return;
    }
    this.cni.add++;
    const ip = (JSON.parse(r.out) as { ips?: { address: string }[] }).ips?.[0]?.address.split(
      "/",
    )[0];
    if (!ip) throw new Error(`CNI ADD ${name} returned no address`);
    const pod: LabPod = { name, node: n.name, ns, containerId, ip };
    this.s.pods.push(pod);
    saveLab(this.s);
    // The new pod reaches a long-lived pod on another node (stale FDB or routes would not).
    const target = this.s.pods.find(
      (p) => /-p1$/.test(p.name) && p.node !== n.name && Number(p.node.slice(1)) < NODES,
    );
    if (target && !(await this.reaches(pod, target.ip))) {
      this.cni.unreachable++;
      this.problem(`new pod ${name} (${ip}) cannot reach ${target.name} (${target.ip})`);
    }
  }

  private async reaches(p: LabPod, ip: string): Promise<boolean> {
    for (let i = 0; i < 10; i++) {
      const r = await run(["ip", "netns", "exec", p.ns, "ping", "-c", "1", "-W", "1", ip]);
      if (r.code === 0) return true;
    }
    return false;
  }

  private async podDel(p: LabPod, netnsFirst: boolean): Promise<void> {
    const n = this.node(p.node);
    if (netnsFirst) await NetnsLab.removeNamespaces([p.ns]);
    await this.runtimeDel(n, p.containerId, p.ns);
    if (!netnsFirst) await NetnsLab.removeNamespaces([p.ns]);
    this.s.pods.splice(this.s.pods.indexOf(p), 1);
    saveLab(this.s);
  }

  /** Stop the node's agent with `signal`, restart it as a supervisor would, wait for it. */
  private async restartAgent(n: LabNode, signal: NodeJS.Signals, kind: FaultKind): Promise<void> {
    const a = this.agents.get(n.name)!;
    const tKill = Date.now();
    const clean = await a.stop(signal);
    if (!clean) this.problem(`${n.name}: agent did not stop within 10 s of ${signal}`);
    const tExit = Date.now();
    a.start();
    const tSpawn = Date.now();
    n.pid = a.pid;
    saveLab(this.s);
    const rep = await until(`${n.name} agent after ${signal}`, READY_MS, async () => {
      if (!a.running) throw new Error("exited");
      return agentReport(n, 500);
    });
    const tReady = Date.now();
    const cpuMs = cpuMsOf(a.pid);
    this.restarts.push({ node: n.name, kind, signal, tKill, tExit, tSpawn, tReady, cpuMs });
    const was = this.subnets.get(n.name);
    if (was && rep.subnet !== was) {
      this.leasesLost++;
      this.problem(`${n.name}: subnet ${was} became ${rep.subnet} after ${signal}`);
      this.subnets.set(n.name, rep.subnet);
    }
  }

  /** etcd stopped then started, or the file store's directories made immutable. */
  private async storeOutage(ms: number, rec: FaultRecord): Promise<void> {
    this.storeDown = true;
    try {
      if (this.etcd) {
        await this.etcd.stop("SIGTERM");
        await sleep(ms);
        this.etcd.start();
        this.s.etcd = { pid: this.etcd.pid, endpoint: this.s.etcd!.endpoint };
        saveLab(this.s);
        await until("etcd back", READY_MS, async () =>
          (await labEtcdctl(this.s, ["endpoint", "health"])).code === 0 ? true : undefined,
        );
      } else {
        await this.chattr("+i");
        await sleep(ms);
        await this.chattr("-i");
      }
    } catch (e) {
      this.problem(`store outage: ${(e as Error).message}`);
    } finally {
      this.storeDown = false;
      rec.end = Date.now();
    }
  }

  storeDirs(): string[] {
    const d = join(this.s.dir, "store");
    return [d, join(d, "subnets")];
  }

  private async chattr(flag: "+i" | "-i"): Promise<void> {
    for (const d of this.storeDirs()) {
      const r = await run(["chattr", flag, d]);
      if (r.code !== 0) throw new Error(`chattr ${flag} ${d}: ${r.stderr.trim()}`);
    }
  }

  /** Never leave the store immutable (labDown could not remove it). */
  async cleanupStore(): Promise<void> {
    if (this.s.store === "file") {
      for (const d of this.storeDirs()) if (existsSync(d)) await run(["chattr", "-i", d]);
    }
  }

  /**
   * The churn node leaves (its agent stopped, its namespace, pods and disk gone; with
   * `dropLease` an operator also deletes its lease) and a new machine joins on the same
   * underlay address, with a new name and so a new VTEP MAC.
   */
  private async replaceNode(dropLease: boolean, rec: FaultRecord): Promise<void> {
    const old = this.churnNode;
    const a = this.agents.get(old.name)!;
    const subnet = this.subnets.get(old.name);
    await a.stop("SIGTERM");
    const gone = this.s.pods.filter((p) => p.node === old.name);
    await NetnsLab.removeNamespaces([...gone.map((p) => p.ns), old.ns]);
    this.s.pods = this.s.pods.filter((p) => p.node !== old.name);
    this.s.nodes = this.s.nodes.filter((n) => n !== old);
    this.agents.delete(old.name);
    rmSync(join(this.s.dir, old.name), { recursive: true, force: true });
    if (dropLease && subnet) await this.deleteLease(subnet);
    saveLab(this.s);
    const name = `n${++this.nodeSeq}`;
    rec.note = `${old.name} -> ${name} on ${old.address}${dropLease ? ", lease deleted" : ""}`;
    const n = await addLabNode(this.net, this.s, name, old.address, `p${this.nodeSeq}`);
    const spec = { ...a.spec, ns: n.ns, log: n.log, env: agentEnv(a.spec.env, this.s, n) };
    const sup = new Supervised(name, spec, 0, (x, how) => this.crash(x, how));
    sup.start();
    n.pid = sup.pid;
    this.agents.set(name, sup);
    this.s.nodes.push(n);
    saveLab(this.s);
    const rep = await until(`${name} joined`, READY_MS, async () => {
      if (!sup.running) throw new Error("exited");
      return existsSync(n.stateFile) ? agentReport(n, 500) : undefined;
    });
    n.subnet = rep.subnet;
    this.subnets.set(name, rep.subnet);
    saveLab(this.s);
    // Every other node has the new VTEP MAC for that address (and not the old one).
    const t = Date.now();
    await until(`peers learn ${name}`, 30_000, async () => {
      for (const m of this.s.nodes.filter((x) => x !== n)) {
        const r = await agentReport(m, 1000);
        if (!r.peers.some((p) => p.address === n.address && p.vtepMac === rep.vtepMac)) return;
      }
      return true;
    }).catch((e: Error) => this.problem(e.message));
    rec.note += `; peers converged in ${Date.now() - t} ms`;
  }

  private async deleteLease(subnet: string): Promise<void> {
    if (this.s.store === "etcd") {
      const key = `/vxtun-lab-${this.s.name}/network/subnets/${subnetKey(subnet)}`;
      // The store may be down right now: an operator would retry.
      await until("lease deleted", READY_MS, async () =>
        (await labEtcdctl(this.s, ["del", key])).code === 0 ? true : undefined,
      );
    } else {
      await until("lease deleted", READY_MS, async () => {
        rmSync(join(this.s.dir, "store", "subnets", `${subnetKey(subnet)}.json`), { force: true });
        return true;
      });
    }
  }

  private async sampleMemory(): Promise<void> {
    for (const [name, a] of this.agents) {
      if (!a.running) continue;
      const rss = rssOf(a.pid);
      if (rss === undefined) continue;
      const heap = await heapOf(a.spec.ns, METRICS).catch(() => ({
        used: undefined,
        old: undefined,
      }));
      this.memory.push({
        at: Date.now(),
        node: name,
        pid: a.pid,
        rssBytes: rss,
        heapUsedBytes: heap.used,
        oldSpaceBytes: heap.old,
      });
    }
  }

  /** Faults over: every agent answering with every peer, then a few quiet seconds. */
  private async settle(): Promise<void> {
    for (const n of this.s.nodes) {
      const a = this.agents.get(n.name)!;
      if (!a.running) {
        this.problem(`${n.name}: agent not running at the end`);
        a.start();
      }
    }
    await until("mesh complete", 60_000, async () => {
      for (const n of this.s.nodes) {
        const r = await agentReport(n, 1000);
        if (r.peers.length !== this.s.nodes.length - 1) return;
      }
      return true;
    }).catch((e: Error) => this.problem(e.message));
    await sleep(3000);
  }

  private async audit(): Promise<NodeAudit[]> {
    const reports = new Map<string, Peer>();
    for (const n of this.s.nodes) {
      const r = await agentReport(n, 3000);
      reports.set(n.name, { address: n.address, subnet: r.subnet, vtepMac: r.vtepMac });
    }
    const device = this.s.mode === "vxlan-l2" ? "vxtap0" : "vxtun0";
    const out: NodeAudit[] = [];
    for (const n of this.s.nodes) {
      const peers = [...reports].filter(([k]) => k !== n.name).map(([, p]) => p);
      out.push(await auditNode(this.s, n, this.s.pods, peers, device));
    }
    return out;
  }

  /** Leases in the store: each live node's subnet must be held by its address. */
  private async countLeases(): Promise<void> {
    for (const n of this.s.nodes) {
      const subnet = this.subnets.get(n.name)!;
      let holder: string | undefined;
      if (this.s.store === "etcd") {
        const key = `/vxtun-lab-${this.s.name}/network/subnets/${subnetKey(subnet)}`;
        const r = await labEtcdctl(this.s, ["get", "--print-value-only", key]);
        holder = r.stdout.trim()
          ? (JSON.parse(r.stdout) as { PublicIP: string }).PublicIP
          : undefined;
      } else {
        const f = join(this.s.dir, "store", "subnets", `${subnetKey(subnet)}.json`);
        holder = existsSync(f)
          ? (JSON.parse((await run(["cat", f])).stdout) as { value: { PublicIP: string } }).value
              .PublicIP
          : undefined;
      }
      if (holder !== n.address) {
        this.leasesLost++;
        this.problem(`${n.name}: lease of ${subnet} held by ${holder ?? "nobody"}`);
      }
    }
  }
}
