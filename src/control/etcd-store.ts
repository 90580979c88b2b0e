// etcd v3 store in flannel's exact layout (docs/flannel-compat.md), so a vxtun node joins a cluster
// whose other nodes run flanneld. Claims are transactions (create-if-absent, or
// compare-and-swap on the key's mod revision when re-claiming our own), leases are etcd
// leases with a TTL, so etcd itself deletes a dead node's key and every watcher sees it.
// Renewal follows flanneld: grant a fresh lease and re-put the value under it (flanneld
// watchers expect a put per renewal); the superseded lease is revoked.

import { readFileSync } from "node:fs";
import { ExponentialBackoff, type IBackoff, noop } from "cockatiel";
import {
  Etcd3,
  EtcdAuthenticationFailedError,
  EtcdPermissionDeniedError,
  type IKeyValue,
  type IOptions,
  type Watcher,
} from "etcd3";
import { ConfigError } from "../dataplane/config.js";
import type { EtcdConfig } from "./config.js";
import {
  keySubnet,
  type LeaseSubnets,
  type LeaseValue,
  leaseValueSchema,
  type NetworkConfig,
  networkConfigSchema,
  parseJsonValue,
  subnetKey,
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

export interface EtcdStoreOptions {
  endpoints: string[];
  /** Default "/coreos.com/network", flannel's. */
  prefix: string;
  /** Per-call deadline: a dead etcd must fail calls fast so forwarding state stays put. */
  callTimeoutMs?: number;
  /** TLS material, already read (etcdSecurity). */
  credentials?: IOptions["credentials"];
  auth?: { username: string; password: string };
  warn?: (msg: string) => void;
}

/** Read the TLS files and password the config names; an unreadable one is a ConfigError. */
export function etcdSecurity(c: EtcdConfig): Pick<EtcdStoreOptions, "credentials" | "auth"> {
  const read = (key: string, file: string | undefined) => {
    if (!file) return undefined;
    try {
      return readFileSync(file);
    } catch (e) {
      throw new ConfigError(
        `store.${key} ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      );
    }
  };
  const ca = read("caFile", c.caFile);
  const cert = read("certFile", c.certFile);
  const key = read("keyFile", c.keyFile);
  const pw =
    c.password ??
    read("passwordFile", c.passwordFile)
      ?.toString()
      .replace(/\r?\n$/, "");
  const tls = c.endpoints.some((e) => e.startsWith("https:"));
  if ((ca || cert) && !tls) {
    throw new ConfigError(
      "store.caFile/certFile are set but no endpoint is https://: use https:// endpoints for TLS",
    );
  }
  return {
    // grpc wants a root certificate with a client pair; without caFile the system's.
    credentials:
      ca || cert
        ? {
            rootCertificate: ca ?? read("caFile", "/etc/ssl/certs/ca-certificates.crt")!,
            privateKey: key,
            certChain: cert,
          }
        : undefined,
    auth: c.username && pw !== undefined ? { username: c.username, password: pw } : undefined,
  };
}

/**
 * One line that names what is wrong with talking to etcd, for the log: grpc's own text
 * hides a bad certificate or password in a long "No connection established" message.
 */
export function explainEtcdError(e: unknown): Error {
  const err = e as Error;
  const text = err?.message ?? String(e);
  let why: string | undefined;
  if (e instanceof EtcdAuthenticationFailedError || /authentication failed/i.test(text)) {
    why = "etcd rejected the username or password (store.username, store.password)";
  } else if (e instanceof EtcdPermissionDeniedError || /permission denied/i.test(text)) {
    why = "etcd denied access to the user (store.username): grant it a role on the prefix";
  } else if (/user name is empty|user name not found|auth token/i.test(text)) {
    why = "etcd requires authentication: set store.username and store.password";
  } else if (/certificate|self[- ]signed|unable to verify|CERT_|SSL|TLS|handshake/i.test(text)) {
    const m = /(certificate[^.;,)]*|self[- ]signed[^.;,)]*|unable to verify[^.;,)]*)/i.exec(text);
    why = `TLS with etcd failed${m ? ` (${m[1].trim()})` : ""}: check store.caFile, store.certFile, store.keyFile`;
  }
  if (!why) return err instanceof Error ? err : new Error(text);
  const out = new Error(why);
  out.name = err?.name ?? "Error";
  return out;
}
export class EtcdStore implements Store {
  readonly kind = "etcd" as const;
  private readonly client: Etcd3;
  private readonly tracker = new HealthTracker();
  private readonly prefix: string;
  private readonly watchers = new Set<Watcher>();
  /** etcd lease id currently holding each of our keys, revoked when superseded. */
  private readonly ourLeases = new Map<string, string>();

  constructor(private readonly opts: EtcdStoreOptions) {
    this.prefix = opts.prefix.replace(/\/+$/, "");
    const timeout = opts.callTimeoutMs ?? 3000;
    this.client = new Etcd3({
      hosts: opts.endpoints,
      credentials: opts.credentials,
      auth: opts.auth,
      dialTimeout: timeout,
      // The agent owns retry and backoff (and reconciles after an outage); the client's
      // default circuit breaker would add up to 5 s of refusal after etcd is back.
      faultHandling: {
        host: () => noop,
        global: noop,
        // etcd3's typing says IBackoff, but its watch manager calls .next() on it first,
        // exactly as on its own default (a factory): pass the factory.
        watchBackoff: new ExponentialBackoff({
          initialDelay: 200,
          maxDelay: 2000,
        }) as unknown as IBackoff<unknown>,
      },
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeout }),
    });
  }

  health(): StoreHealth {
    return this.tracker.get();
  }

  /** A store call, tracked for health, its failure in one line that names the problem. */
  private run<T>(fn: () => Promise<T>): Promise<T> {
    return this.tracker.run(() =>
      fn().then(
        (r) => {
          this.lastCause = undefined;
          return r;
        },
        (e) => {
          throw e instanceof LeaseTakenError ? e : this.explain(e);
        },
      ),
    );
  }

  /** The last failure that named its cause (a certificate, a password). */
  private lastCause: Error | undefined;

  private explain(e: unknown): Error {
    const out = explainEtcdError(e);
    if (out !== e) this.lastCause = out;
    // While grpc backs off it reports "Last error: null": the cause is still the last one.
    else if (this.lastCause && /Last error: null/.test(out.message)) return this.lastCause;
    return out;
  }

  private get configKey(): string {
    return `${this.prefix}/config`;
  }

  private get subnetsPrefix(): string {
    return `${this.prefix}/subnets/`;
  }

  private leaseKey(l: LeaseSubnets): string {
    return `${this.subnetsPrefix}${subnetKey(l.subnet, l.subnet6)}`;
  }

  getConfig(): Promise<NetworkConfig | undefined> {
    return this.run(async () => {
      const text = await this.client.get(this.configKey).string();
      return text === null ? undefined : this.parseConfig(text);
    });
  }

  private parseConfig(text: string): NetworkConfig {
    return parseJsonValue(networkConfigSchema, text, `network config ${this.configKey}`);
  }

  putConfigIfAbsent(config: NetworkConfig): Promise<NetworkConfig> {
    return this.run(async () => {
      const r = await this.client
        .if(this.configKey, "Create", "==", 0)
        .then(this.client.put(this.configKey).value(JSON.stringify(config)))
        .else(this.client.get(this.configKey))
        .commit();
      if (r.succeeded) return config;
      const kv = r.responses[0]?.response_range?.kvs[0];
      if (!kv) throw new Error(`${this.configKey} vanished during creation; try again`);
      return this.parseConfig(kv.value.toString());
    });
  }

  createLease(lease: LeaseSubnets, value: LeaseValue, ttlSeconds: number) {
    return this.run(() => this.claim(lease, value, ttlSeconds, LeaseTakenError));
  }

  renewLease(lease: LeaseSubnets, value: LeaseValue, ttlSeconds: number) {
    return this.run(() => this.claim(lease, value, ttlSeconds, LeaseLostError));
  }

  deleteLease(lease: LeaseSubnets): Promise<void> {
    return this.run(async () => {
      await this.client.delete().key(this.leaseKey(lease)).exec();
    });
  }

  /** Put our value under a fresh etcd lease if the key is absent or already ours. */
  private async claim(
    lease: LeaseSubnets,
    value: LeaseValue,
    ttlSeconds: number,
    Taken: typeof LeaseTakenError,
  ): Promise<{ expiresAt: number }> {
    const { subnet } = lease;
    const key = this.leaseKey(lease);
    for (let attempt = 0; attempt < 5; attempt++) {
      const kvs = (await this.client.get(key).exec()).kvs;
      const have = kvs[0];
      if (have) {
        const v = this.parseLeaseQuiet(have);
        // A corrupt value is nobody's: treat it as held, so we never clobber a stranger.
        if (!v || v.PublicIP !== value.PublicIP)
          throw new Taken(subnet, v?.PublicIP ?? "(unreadable value)");
      }
      const granted = await this.client.leaseClient.leaseGrant({ TTL: ttlSeconds, ID: 0 });
      const id = String(granted.ID);
      const txn = have
        ? this.client.if(key, "Mod", "==", have.mod_revision)
        : this.client.if(key, "Create", "==", 0);
      const r = await txn
        .then(this.client.put(key).value(JSON.stringify(value)).lease(id))
        .commit();
      if (!r.succeeded) {
        // Someone wrote in between: drop the unused lease and look again.
        await this.revoke(id);
        continue;
      }
      const old = this.ourLeases.get(key) ?? (have && have.lease !== "0" ? have.lease : undefined);
      this.ourLeases.set(key, id);
      if (old && old !== id) await this.revoke(old);
      return { expiresAt: Date.now() + Number(granted.TTL) * 1000 };
    }
    throw new Error(`etcd: ${key} keeps changing under us; giving up this round`);
  }

  private async revoke(id: string): Promise<void> {
    // Best effort: an unrevoked lease only lingers until its TTL.
    await this.client.leaseClient.leaseRevoke({ ID: id }).catch(() => undefined);
  }

  private parseLeaseQuiet(kv: IKeyValue): LeaseValue | undefined {
    try {
      return parseJsonValue(leaseValueSchema, kv.value.toString(), `lease ${kv.key.toString()}`);
    } catch (e) {
      this.opts.warn?.((e as Error).message);
      return undefined;
    }
  }

  private recordOf(kv: IKeyValue): LeaseRecord | undefined {
    const subnets = keySubnet(kv.key.toString().slice(this.subnetsPrefix.length));
    if (!subnets) return undefined;
    const value = this.parseLeaseQuiet(kv);
    return value ? { ...subnets, value } : undefined;
  }

  listLeases(): Promise<LeaseSnapshot> {
    return this.run(async () => {
      const r = await this.client.getAll().prefix(this.subnetsPrefix).exec();
      const leases: LeaseRecord[] = [];
      for (const kv of r.kvs) {
        const rec = this.recordOf(kv);
        if (rec) leases.push(rec);
      }
      return { leases, revision: Number(r.header.revision) };
    });
  }

  async watchLeases(
    from: LeaseSnapshot,
    onEvent: (e: LeaseEvent) => void,
    onError: (err: Error) => void,
  ): Promise<Watch> {
    const watcher = await this.run(() =>
      this.client
        .watch()
        .prefix(this.subnetsPrefix)
        .startRevision(String(from.revision + 1))
        .create(),
    );
    this.watchers.add(watcher);
    let dead = false;
    const die = (err: Error) => {
      if (dead) return;
      dead = true;
      this.watchers.delete(watcher);
      this.tracker.fail(err);
      void watcher.cancel().catch(() => undefined);
      onError(err);
    };
    watcher.on("put", (kv) => {
      const rec = this.recordOf(kv);
      if (rec) onEvent({ type: "put", lease: rec });
    });
    watcher.on("delete", (kv) => {
      const subnets = keySubnet(kv.key.toString().slice(this.subnetsPrefix.length));
      // etcd reports a lease expiry as a delete of the key.
      if (subnets) onEvent({ type: "delete", ...subnets });
    });
    watcher.on("disconnected", (e) =>
      die(new Error(`etcd watch disconnected: ${this.explain(e).message}`)),
    );
    watcher.on("error", (e) => die(new Error(`etcd watch failed: ${this.explain(e).message}`)));
    return {
      cancel: () => {
        dead = true;
        this.watchers.delete(watcher);
        void watcher.cancel().catch(() => undefined);
      },
    };
  }

  async close(): Promise<void> {
    for (const w of this.watchers) await w.cancel().catch(() => undefined);
    this.watchers.clear();
    this.client.close();
  }
}
