// The embedded store: a directory shared by the agents of one machine (lab nodes are
// separate processes in separate network namespaces, but see one filesystem). One JSON
// file per lease, `subnets/10.244.1.0-24.json` = {value, expiresAt}, and `config.json`.
// Writers serialize on a proper-lockfile lock (a mkdir, atomic on every filesystem,
// with stale-lock recovery if a holder died) and replace files by rename, so readers
// never see half a file and need no lock. Expiry is judged by readers: an expired lease
// is absent, and the next claimant may take the subnet over.
import { randomBytes } from "node:crypto";
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import lockfile from "proper-lockfile";
import { z } from "zod";
import {
  keySubnet,
  type LeaseSubnets,
  type LeaseValue,
  leaseValueSchema,
  type NetworkConfig,
  networkConfigSchema,
  parseJsonValue,
  subnetKey,
  subnetsOf,
} from "./flannel.js";
import {
  HealthTracker,
  type LeaseEvent,
  LeaseLostError,
  type LeaseRecord,
  type LeaseSnapshot,
  LeaseTakenError,
  type Store,
  type StoreHealth,
  type Watch,
} from "./store.js";

const leaseFileSchema = z.object({ value: leaseValueSchema, expiresAt: z.number() });

/** Write a file so that readers see the old or the new content, never a mix. */
export function writeFileAtomic(file: string, text: string, mode = 0o644): void {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    writeFileSync(tmp, text, { mode });
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

export interface FileStoreOptions {
  dir: string;
  /** Watch poll period; 200 ms keeps changes well within the 1 s budget. */
  pollMs?: number;
  /** Told once per corrupt file (which is then treated as absent by readers). */
  warn?: (msg: string) => void;
}

export class FileStore implements Store {
  readonly kind = "file" as const;
  private readonly subnetsDir: string;
  private readonly tracker = new HealthTracker();
  private readonly warned = new Set<string>();
  private readonly watches = new Set<NodeJS.Timeout>();

  constructor(private readonly opts: FileStoreOptions) {
    this.subnetsDir = join(opts.dir, "subnets");
    mkdirSync(this.subnetsDir, { recursive: true, mode: 0o755 });
  }

  health(): StoreHealth {
    return this.tracker.get();
  }

  private leaseFile(l: LeaseSubnets): string {
    return join(this.subnetsDir, `${subnetKey(l.subnet, l.subnet6)}.json`);
  }

  private get configFile(): string {
    return join(this.opts.dir, "config.json");
  }

  /** The allocation critical section: one writer at a time across processes. */
  private async locked<T>(fn: () => T): Promise<T> {
    const release = await lockfile.lock(this.opts.dir, {
      lockfilePath: join(this.opts.dir, ".lock"),
      realpath: false,
      stale: 5000,
      retries: { retries: 50, minTimeout: 10, maxTimeout: 100 },
    });
    try {
      return fn();
    } finally {
      await release();
    }
  }

  getConfig(): Promise<NetworkConfig | undefined> {
    return this.tracker.run(async () => this.readConfig());
  }

  private readConfig(): NetworkConfig | undefined {
    let text: string;
    try {
      text = readFileSync(this.configFile, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
    return parseJsonValue(networkConfigSchema, text, `network config ${this.configFile}`);
  }

  putConfigIfAbsent(config: NetworkConfig): Promise<NetworkConfig> {
    return this.tracker.run(() =>
      this.locked(() => {
        const have = this.readConfig();
        if (have) return have;
        writeFileAtomic(this.configFile, `${JSON.stringify(config)}\n`);
        return config;
      }),
    );
  }

  /** A lease file: undefined if absent; throws naming the file if corrupt. */
  private readLease(l: LeaseSubnets): { value: LeaseValue; expiresAt: number } | undefined {
    const file = this.leaseFile(l);
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
    return parseJsonValue(leaseFileSchema, text, `lease file ${file}`);
  }

  createLease(lease: LeaseSubnets, value: LeaseValue, ttlSeconds: number) {
    return this.tracker.run(() => this.claim(lease, value, ttlSeconds, LeaseTakenError));
  }

  renewLease(lease: LeaseSubnets, value: LeaseValue, ttlSeconds: number) {
    return this.tracker.run(() => this.claim(lease, value, ttlSeconds, LeaseLostError));
  }

  deleteLease(lease: LeaseSubnets): Promise<void> {
    return this.tracker.run(() =>
      this.locked(() => rmSync(this.leaseFile(lease), { force: true })),
    );
  }

  /** Write our lease unless another node holds a live one (then throw `Taken`). */
  private claim(
    lease: LeaseSubnets,
    value: LeaseValue,
    ttlSeconds: number,
    Taken: typeof LeaseTakenError,
  ): Promise<{ expiresAt: number }> {
    return this.locked(() => {
      const have = this.readLease(lease);
      if (have && have.expiresAt > Date.now() && have.value.PublicIP !== value.PublicIP) {
        throw new Taken(lease.subnet, have.value.PublicIP);
      }
      const expiresAt = Date.now() + ttlSeconds * 1000;
      writeFileAtomic(this.leaseFile(lease), `${JSON.stringify({ value, expiresAt })}\n`);
      return { expiresAt };
    });
  }

  listLeases(): Promise<LeaseSnapshot> {
    return this.tracker.run(async () => {
      const now = Date.now();
      const leases: LeaseRecord[] = [];
      for (const key of this.leaseKeys()) {
        const l = this.readLeaseQuiet(key);
        if (l && l.expiresAt > now) leases.push({ ...key, value: l.value, expiresAt: l.expiresAt });
      }
      return { leases, revision: 0 };
    });
  }

  private leaseKeys(): LeaseSubnets[] {
    const out: LeaseSubnets[] = [];
    for (const f of readdirSync(this.subnetsDir)) {
      if (!f.endsWith(".json")) continue; // temp files of writers in flight
      const key = keySubnet(f.slice(0, -5));
      if (key) out.push(key);
    }
    return out;
  }

  /** For readers of the whole table: a corrupt file is reported once and skipped. */
  private readLeaseQuiet(key: LeaseSubnets): { value: LeaseValue; expiresAt: number } | undefined {
    const name = subnetKey(key.subnet, key.subnet6);
    try {
      const l = this.readLease(key);
      this.warned.delete(name);
      return l;
    } catch (e) {
      if (!this.warned.has(name)) {
        this.warned.add(name);
        this.opts.warn?.((e as Error).message);
      }
      return undefined;
    }
  }

  /**
   * Polling (not fs.watch: it misses renames on some filesystems and says nothing about
   * expiry, which is a matter of time, not of file changes). A poll stats each file and
   * reads only those whose stat changed.
   */
  async watchLeases(
    from: LeaseSnapshot,
    onEvent: (e: LeaseEvent) => void,
    onError: (err: Error) => void,
  ): Promise<Watch> {
    // Keyed by the file's key name: a dual-stack lease is one file, as in flannel's etcd.
    const known = new Map<
      string,
      { key: LeaseSubnets; sig: string; stat: string; expiresAt: number }
    >();
    const nameOf = (k: LeaseSubnets) => subnetKey(k.subnet, k.subnet6);
    for (const l of from.leases) {
      const key = subnetsOf(l);
      known.set(nameOf(l), {
        key,
        sig: sigOf(l.value, l.expiresAt!),
        stat: "",
        expiresAt: l.expiresAt!,
      });
    }
    const poll = () => {
      try {
        const now = Date.now();
        const seen = new Set<string>();
        for (const key of this.leaseKeys()) {
          const name = nameOf(key);
          seen.add(name);
          let st: string;
          try {
            const s = statSync(this.leaseFile(key));
            st = `${s.ino}:${s.mtimeMs}:${s.size}`;
          } catch {
            continue; // removed between readdir and stat: next poll sees it gone
          }
          const k = known.get(name);
          const live = k !== undefined && k.sig !== "";
          if (k && k.stat === st) {
            // Unchanged file: only time can change its meaning.
            if (live && k.expiresAt <= now) {
              known.set(name, { ...k, sig: "" });
              onEvent({ type: "expire", ...key });
            }
            continue;
          }
          const l = this.readLeaseQuiet(key);
          if (!l || l.expiresAt <= now) {
            // Remember the stat so an unchanged expired or corrupt file is not re-read.
            known.set(name, { key, sig: "", stat: st, expiresAt: 0 });
            if (live) onEvent({ type: l ? "expire" : "delete", ...key });
            continue;
          }
          const sig = sigOf(l.value, l.expiresAt);
          known.set(name, { key, sig, stat: st, expiresAt: l.expiresAt });
          if (!live || k.sig !== sig) onEvent({ type: "put", lease: { ...key, ...l } });
        }
        for (const [name, k] of known) {
          if (seen.has(name)) continue;
          known.delete(name);
          if (k.sig !== "") onEvent({ type: "delete", ...k.key });
        }
      } catch (e) {
        clearInterval(timer);
        this.watches.delete(timer);
        this.tracker.fail(e as Error);
        onError(e as Error);
      }
    };
    const timer = setInterval(poll, this.opts.pollMs ?? 200);
    this.watches.add(timer);
    poll();
    return {
      cancel: () => {
        clearInterval(timer);
        this.watches.delete(timer);
      },
    };
  }

  async close(): Promise<void> {
    for (const t of this.watches) clearInterval(t);
    this.watches.clear();
  }
}

function sigOf(value: LeaseValue, expiresAt: number): string {
  return `${expiresAt}:${JSON.stringify(value)}`;
}
