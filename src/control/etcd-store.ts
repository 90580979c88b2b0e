// etcd v3 store in flannel's exact layout (docs/flannel-compat.md), so a vxtun node joins a cluster
// whose other nodes run flanneld. Claims are transactions (create-if-absent, or
// compare-and-swap on the key's mod revision when re-claiming our own), leases are etcd
// leases with a TTL, so etcd itself deletes a dead node's key and every watcher sees it.
// Renewal follows flanneld: grant a fresh lease and re-put the value under it (flanneld
// watchers expect a put per renewal); the superseded lease is revoked.

import { ExponentialBackoff, type IBackoff, noop } from "cockatiel";
import { Etcd3, type IKeyValue, type Watcher } from "etcd3";
import {
  keySubnet,
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
  warn?: (msg: string) => void;
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

  private get configKey(): string {
    return `${this.prefix}/config`;
  }

  private get subnetsPrefix(): string {
    return `${this.prefix}/subnets/`;
  }

  private leaseKey(subnet: string): string {
    return `${this.subnetsPrefix}${subnetKey(subnet)}`;
  }

  getConfig(): Promise<NetworkConfig | undefined> {
    return this.tracker.run(async () => {
      const text = await this.client.get(this.configKey).string();
      return text === null ? undefined : this.parseConfig(text);
    });
  }

  private parseConfig(text: string): NetworkConfig {
    return parseJsonValue(networkConfigSchema, text, `network config ${this.configKey}`);
  }

  putConfigIfAbsent(config: NetworkConfig): Promise<NetworkConfig> {
    return this.tracker.run(async () => {
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

  createLease(subnet: string, value: LeaseValue, ttlSeconds: number) {
    return this.tracker.run(() => this.claim(subnet, value, ttlSeconds, LeaseTakenError));
  }

  renewLease(subnet: string, value: LeaseValue, ttlSeconds: number) {
    return this.tracker.run(() => this.claim(subnet, value, ttlSeconds, LeaseLostError));
  }

  /** Put our value under a fresh etcd lease if the key is absent or already ours. */
  private async claim(
    subnet: string,
    value: LeaseValue,
    ttlSeconds: number,
    Taken: typeof LeaseTakenError,
  ): Promise<{ expiresAt: number }> {
    const key = this.leaseKey(subnet);
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
      const old =
        this.ourLeases.get(subnet) ?? (have && have.lease !== "0" ? have.lease : undefined);
      this.ourLeases.set(subnet, id);
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
    const subnet = keySubnet(kv.key.toString().slice(this.subnetsPrefix.length));
    if (!subnet) return undefined;
    const value = this.parseLeaseQuiet(kv);
    return value ? { subnet, value } : undefined;
  }

  listLeases(): Promise<LeaseSnapshot> {
    return this.tracker.run(async () => {
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
    const watcher = await this.tracker.run(() =>
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
      const subnet = keySubnet(kv.key.toString().slice(this.subnetsPrefix.length));
      // etcd reports a lease expiry as a delete of the key.
      if (subnet) onEvent({ type: "delete", subnet });
    });
    watcher.on("disconnected", (e) => die(new Error(`etcd watch disconnected: ${e.message}`)));
    watcher.on("error", (e) => die(new Error(`etcd watch failed: ${e.message}`)));
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
