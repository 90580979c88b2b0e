// The peers the agent last programmed, kept in its state directory (<state>/peers.json)
// so that a restarted agent forwards at once, before (or without) the store answering:
// a supervisor's restart costs pods well under a second instead of the time the store
// takes, or all of a store outage. The store stays the judge: PeerSync starts from this
// list and reconciles it against the leases as soon as it can list them.
import { readFileSync } from "node:fs";
import { z } from "zod";
import { writeFileAtomic } from "./file-store.js";
import type { LeasePeer } from "./flannel.js";

const cacheSchema = z.array(
  z.object({
    address: z.string(),
    subnet: z.string(),
    vtepMac: z.string().optional(),
    subnet6: z.string().optional(),
    vtepMac6: z.string().optional(),
    publicIpv6: z.string().optional(),
  }),
);

/** The cached peers; [] when there is no cache, and (with a warning) when it is unreadable. */
export function readPeerCache(file: string, warn: (msg: string) => void): LeasePeer[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") warn(`peer cache ${file}: ${e}`);
    return [];
  }
  try {
    return cacheSchema.parse(JSON.parse(text));
  } catch {
    warn(`peer cache ${file} is corrupt: ignored (peers come from the store)`);
    return [];
  }
}

export function writePeerCache(file: string, peers: Iterable<LeasePeer>): void {
  writeFileAtomic(file, `${JSON.stringify([...peers])}\n`, 0o600);
}
