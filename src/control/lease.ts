// Claiming and keeping this node's subnet. The subnet survives restarts twice over: the
// agent remembers it in <state>/lease.json, and the store's lease is keyed by subnet and
// owned by PublicIP, so a restarting node re-claims its own lease (as flanneld does)
// unless another node took the subnet after ours expired.
import { mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import type { Logger } from "pino";
import { z } from "zod";
import { writeFileAtomic } from "./file-store.js";
import {
  candidateSubnets,
  type LeaseSubnets,
  type LeaseValue,
  parseJsonValue,
  subnetFits,
  subnetsOf,
} from "./flannel.js";
import { type Net6, subnet6Fits, subnets6 } from "./ip6net.js";
import { LeaseTakenError, type Store } from "./store.js";

/**
 * When to renew: flanneld renews 1 h before a 24 h lease runs out; we do the same for
 * long TTLs. Short TTLs (labs, tests) renew every third of the TTL, so two renewals can
 * fail (a store restart) before the lease expires.
 */
export function renewDelayMs(ttlSeconds: number): number {
  return ttlSeconds > 7200 ? (ttlSeconds - 3600) * 1000 : (ttlSeconds * 1000) / 3;
}

const rememberedSchema = z.object({
  subnet: z.string(),
  network: z.string(),
  publicIp: z.string(),
  /** Dual stack: the IPv6 subnet and network it came from. */
  subnet6: z.string().optional(),
  network6: z.string().optional(),
});
export type Remembered = z.infer<typeof rememberedSchema>;

/** The subnet this node held last time; undefined if none. Corrupt: error naming the file. */
export function readRemembered(file: string): Remembered | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  try {
    return parseJsonValue(rememberedSchema, text, `lease state ${file}`);
  } catch (e) {
    throw new Error(`${(e as Error).message} (remove it to let the node take a new subnet)`);
  }
}

export function writeRemembered(file: string, r: Remembered): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileAtomic(file, `${JSON.stringify(r)}\n`, 0o600);
}

/** No subnet can be had (network full, endless contention): final, not an outage. */
export class AllocationError extends Error {
  override name = "AllocationError";
}

export interface ClaimOptions {
  network: string;
  subnetLen: number;
  /** Dual stack: lease an IPv6 subnet of this network too (flannel's EnableIPv6). */
  v6?: { network: Net6; subnetLen: number };
  value: LeaseValue;
  ttlSeconds: number;
  /** The lease this node held before, tried first. */
  previous?: LeaseSubnets;
  log: Logger;
}

/** Does a lease's key fit the network config: both halves in their networks, and no more? */
function leaseFits(l: LeaseSubnets, o: ClaimOptions): boolean {
  if (!subnetFits(l.subnet, o.network, o.subnetLen)) return false;
  if (!o.v6) return l.subnet6 === undefined;
  return l.subnet6 !== undefined && subnet6Fits(l.subnet6, o.v6.network, o.v6.subnetLen);
}

/** The lowest IPv6 subnet no lease holds (flannel picks among the free ones too). */
function free6(o: ClaimOptions, taken: Set<string | undefined>): string | undefined {
  if (!o.v6) return undefined;
  for (const s of subnets6(o.v6.network, o.v6.subnetLen)) if (!taken.has(s)) return s;
  throw new AllocationError(`no free IPv6 /${o.v6.subnetLen} left`);
}

/**
 * Claim this node's lease: the previous one, else one already ours, else the lowest free
 * subnet (and IPv6 subnet, dual stack). A lease of ours whose key no longer fits the
 * config (IPv4-only in a now dual-stack network) is deleted and its IPv4 subnet kept, as
 * flanneld deletes an incompatible lease before allocating.
 */
export async function claimSubnet(
  store: Store,
  o: ClaimOptions,
): Promise<LeaseSubnets & { expiresAt: number }> {
  const tryClaim = async (lease: LeaseSubnets) => {
    try {
      const { expiresAt } = await store.createLease(lease, o.value, o.ttlSeconds);
      return { ...subnetsOf(lease), expiresAt };
    } catch (e) {
      if (e instanceof LeaseTakenError) {
        o.log.info({ ...lease, holder: e.holder }, "subnet taken, trying another");
        return undefined;
      }
      throw e;
    }
  };
  if (o.previous && leaseFits(o.previous, o)) {
    const r = await tryClaim(o.previous);
    if (r) return r;
  }
  const all = candidateSubnets(o.network, o.subnetLen);
  let wanted = o.previous?.subnet;
  // Several agents may start at once: on a lost race, re-list and pick again.
  for (let round = 0; round < 16; round++) {
    let { leases } = await store.listLeases();
    const ours = leases.filter((l) => l.value.PublicIP === o.value.PublicIP);
    const mine = ours.find((l) => leaseFits(l, o));
    if (mine) {
      const r = await tryClaim(mine);
      if (r) return r;
    }
    for (const l of ours.filter((x) => !leaseFits(x, o))) {
      o.log.warn({ ...subnetsOf(l) }, "our lease does not fit the network config; deleting it");
      await store.deleteLease(l);
      leases = leases.filter((x) => x !== l);
      wanted ??= l.subnet;
    }
    const taken = new Set(leases.map((l) => l.subnet));
    const free =
      wanted && subnetFits(wanted, o.network, o.subnetLen) && !taken.has(wanted)
        ? wanted
        : all.find((s) => !taken.has(s));
    if (!free) throw new AllocationError(`no free /${o.subnetLen} left in ${o.network}`);
    const subnet6 = free6(o, new Set(leases.map((l) => l.subnet6)));
    const r = await tryClaim(subnet6 ? { subnet: free, subnet6 } : { subnet: free });
    if (r) return r;
    wanted = undefined;
  }
  throw new AllocationError(`could not claim a subnet in ${o.network}: too much contention`);
}
