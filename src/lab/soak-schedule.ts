// The soak's schedule: a seeded random sequence of faults, so a run that found a bug can
// be replayed exactly (`vxtun lab soak --seed S`). Pure: no I/O, unit-tested.

/** Everything the soak does to a running lab, one kind per line of the report. */
export const FAULT_KINDS = [
  "cni-add", // a pod created through the CNI plugin, as a runtime calls it
  "cni-del", // a pod deleted: CNI DEL, then its netns removed
  "cni-del-netns-gone", // the netns removed first, then CNI DEL (runtimes do this after a crash)
  "cni-add-agent-killed", // an ADD in flight when the agent is SIGKILLed (then restarted)
  "agent-sigkill", // SIGKILL, restarted with the same command line (systemd, a DaemonSet)
  "agent-sigterm", // SIGTERM, restarted once it exits
  "store-outage", // etcd stopped then started, or the file store's directory unwritable
  "node-replace", // a node leaves; a new one joins on its underlay address with a new VTEP MAC
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Relative frequency of each kind: pod churn dominates, as on a real node. */
const WEIGHTS: Record<FaultKind, number> = {
  "cni-add": 24,
  "cni-del": 14,
  "cni-del-netns-gone": 8,
  "cni-add-agent-killed": 5,
  "agent-sigkill": 8,
  "agent-sigterm": 8,
  "store-outage": 5,
  "node-replace": 3,
};

export interface ScheduledFault {
  /** Milliseconds after the soak started. */
  at: number;
  kind: FaultKind;
  /** A random number in [0, 1) for the fault's own choices (which node, which pod...). */
  pick: number;
  /** Store outages: how long the store stays away (ms). */
  durationMs?: number;
}

/** mulberry32: a small, fast, well-distributed 32-bit PRNG; same seed, same sequence. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function weighted(r: number): FaultKind {
  const total = FAULT_KINDS.reduce((s, k) => s + WEIGHTS[k], 0);
  let x = r * total;
  for (const k of FAULT_KINDS) {
    x -= WEIGHTS[k];
    if (x < 0) return k;
  }
  return FAULT_KINDS[FAULT_KINDS.length - 1];
}

export interface ScheduleOptions {
  seed: number;
  /** Length of the fault phase (ms); faults stop then and the lab settles. */
  durationMs: number;
  /** Mean gap between faults (ms). */
  meanGapMs?: number;
  /** Quiet time at the start, so traffic and memory have a baseline. */
  warmupMs?: number;
}

/**
 * The faults of one soak, in time order. Every kind comes once (in a seeded order)
 * before the weighted draw takes over, so even a short soak exercises all of them.
 * Gaps are uniform in [0.5, 1.5] x mean; store outages last 3-12 s.
 */
export function makeSchedule(o: ScheduleOptions): ScheduledFault[] {
  const rnd = prng(o.seed);
  const mean = o.meanGapMs ?? 3000;
  const first = [...FAULT_KINDS];
  for (let i = first.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [first[i], first[j]] = [first[j], first[i]];
  }
  const out: ScheduledFault[] = [];
  let at = o.warmupMs ?? 5000;
  while (at < o.durationMs) {
    const kind = first.shift() ?? weighted(rnd());
    const f: ScheduledFault = { at: Math.round(at), kind, pick: rnd() };
    if (kind === "store-outage") f.durationMs = Math.round(3000 + rnd() * 9000);
    out.push(f);
    at += mean * (0.5 + rnd());
  }
  return out;
}
