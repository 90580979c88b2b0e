// Claiming and keeping this node's subnet. The subnet survives restarts twice over: the
// agent remembers it in <state>/lease.json, and the store's lease is keyed by subnet and
// owned by PublicIP, so a restarting node re-claims its own lease (as flanneld does)
// unless another node took the subnet after ours expired.
import { mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import type { Logger } from "pino";
import { z } from "zod";
import { writeFileAtomic } from "./file-store.js";
import { candidateSubnets, type LeaseValue, parseJsonValue, subnetFits } from "./flannel.js";
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
  value: LeaseValue;
  ttlSeconds: number;
  /** The subnet this node held before, tried first. */
  previous?: string;
  log: Logger;
}

/** Claim a subnet for this node: the previous one, else one already ours, else the lowest free. */
export async function claimSubnet(
  store: Store,
  o: ClaimOptions,
): Promise<{ subnet: string; expiresAt: number }> {
  const tryClaim = async (subnet: string) => {
    try {
      const { expiresAt } = await store.createLease(subnet, o.value, o.ttlSeconds);
      return { subnet, expiresAt };
    } catch (e) {
      if (e instanceof LeaseTakenError) {
        o.log.info({ subnet, holder: e.holder }, "subnet taken, trying another");
        return undefined;
      }
      throw e;
    }
  };
  if (o.previous && subnetFits(o.previous, o.network, o.subnetLen)) {
    const r = await tryClaim(o.previous);
    if (r) return r;
  }
  const all = candidateSubnets(o.network, o.subnetLen);
  // Several agents may start at once: on a lost race, re-list and pick again.
  for (let round = 0; round < 16; round++) {
    const { leases } = await store.listLeases();
    const mine = leases.find(
      (l) => l.value.PublicIP === o.value.PublicIP && subnetFits(l.subnet, o.network, o.subnetLen),
    );
    if (mine) {
      const r = await tryClaim(mine.subnet);
      if (r) return r;
    }
    const taken = new Set(leases.map((l) => l.subnet));
    const free = all.find((s) => !taken.has(s));
    if (!free) throw new AllocationError(`no free /${o.subnetLen} left in ${o.network}`);
    const r = await tryClaim(free);
    if (r) return r;
  }
  throw new AllocationError(`could not claim a subnet in ${o.network}: too much contention`);
}
