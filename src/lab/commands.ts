// `vxtun lab …` verbs: thin wrappers that print what the lab module did.
import { spawnSync } from "node:child_process";
import { UserError } from "../api/errors.js";
import { progressDisplay } from "../bench/progress.js";
import {
  formatLab,
  formatMatrix,
  LAB_MODES,
  LAB_STACKS,
  type LabMode,
  type LabStack,
  labDown,
  labDownAll,
  labPing,
  labStatus,
  labUp,
  podByName,
  readLab,
} from "./lab.js";
import { netnsUnavailableReason } from "./netns.js";
import { UNDERLAY_FAMILIES, type UnderlayFamily } from "./underlay.js";

function requireRoot(): void {
  const why = netnsUnavailableReason();
  if (why) throw new UserError(`the lab ${why}`);
}

function count(text: string, what: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0)
    throw new UserError(`${what} must be a whole number, not "${text}"`);
  return n;
}

export async function labUpCommand(o: {
  lab: string;
  nodes: string;
  pods: string;
  mode: string;
  stack: string;
  underlay: string;
  store: string;
}): Promise<void> {
  if (!LAB_STACKS.includes(o.stack as LabStack)) {
    throw new UserError(`unknown stack "${o.stack}": choose ${LAB_STACKS.join(", ")}`);
  }
  if (!UNDERLAY_FAMILIES.includes(o.underlay as UnderlayFamily)) {
    throw new UserError(`unknown underlay "${o.underlay}": choose ${UNDERLAY_FAMILIES.join(", ")}`);
  }
  if (!LAB_MODES.includes(o.mode as LabMode)) {
    throw new UserError(`unknown mode "${o.mode}": choose ${LAB_MODES.join(", ")}`);
  }
  if (o.store !== "file" && o.store !== "etcd") {
    throw new UserError(`unknown store "${o.store}": choose file (embedded) or etcd`);
  }
  requireRoot();
  const s = await labUp({
    name: o.lab,
    nodes: count(o.nodes, "--nodes"),
    pods: count(o.pods, "--pods"),
    mode: o.mode as LabMode,
    stack: o.stack as LabStack,
    underlay: o.underlay as UnderlayFamily,
    store: o.store,
    onProgress: (msg) => process.stderr.write(`lab: ${msg}\n`),
  });
  console.log(formatLab(s));
  const flag = s.name === "lab" ? "" : ` --lab ${s.name}`;
  console.log(
    `\nnext: 'vxtun lab ping${flag}' (all pairs), 'vxtun lab exec${flag} ${s.pods[0]?.name ?? "POD"} -- ip addr', 'vxtun lab down${flag}'`,
  );
}

export async function labPingCommand(o: { lab: string }): Promise<void> {
  requireRoot();
  const progress = progressDisplay("ping");
  let m: Awaited<ReturnType<typeof labPing>>;
  try {
    m = await labPing(o.lab, progress.update);
  } finally {
    progress.stop();
  }
  console.log(formatMatrix(m));
  const pairs = m.pods.length * (m.pods.length - 1) * m.families.length;
  const fams = m.families.map((f) => f.family).join(" and ");
  console.log(`\n${pairs - m.failures}/${pairs} pairs reachable (${fams})`);
  if (m.failures > 0) process.exitCode = 1;
}

export async function labStatusCommand(o: { lab: string }): Promise<void> {
  console.log(await labStatus(o.lab));
}

export function labExecCommand(o: { lab: string }, pod: string, argv: string[]): void {
  requireRoot();
  if (argv.length === 0)
    throw new UserError("nothing to run: vxtun lab exec POD -- COMMAND [ARGS...]");
  const p = podByName(readLab(o.lab), pod);
  const r = spawnSync("ip", ["netns", "exec", p.ns, ...argv], { stdio: "inherit" });
  process.exitCode = r.status ?? 1;
}

export async function labDownCommand(o: { lab: string; all?: boolean }): Promise<void> {
  requireRoot();
  const r = o.all ? await labDownAll() : await labDown(o.lab);
  console.log(`removed ${r.namespaces} namespaces and stopped ${r.processes} processes`);
}

export async function labSoakCommand(o: {
  lab: string;
  minutes: string;
  seed?: string;
  store: string;
  out: string;
  keep?: boolean;
  from?: string;
}): Promise<void> {
  const { mkdirSync, readFileSync } = await import("node:fs");
  const { formatReport, writeReport } = await import("./soak-report.js");
  mkdirSync(o.out, { recursive: true });
  if (o.from) {
    // Run nothing: redraw the text and chart beside a saved soak.json.
    let saved: Parameters<typeof writeReport>[0];
    try {
      saved = JSON.parse(readFileSync(o.from, "utf8"));
    } catch (e) {
      throw new UserError(`--from ${o.from}: ${(e as Error).message}`);
    }
    await writeReport(saved, o.out);
    console.log(formatReport(saved));
    return;
  }
  const minutes = Number(o.minutes);
  if (!Number.isFinite(minutes) || minutes <= 0 || minutes > 24 * 60)
    throw new UserError(`--minutes must be a number of minutes (0-1440], not "${o.minutes}"`);
  const seed = o.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : count(o.seed, "--seed");
  if (o.store !== "file" && o.store !== "etcd") {
    throw new UserError(`unknown store "${o.store}": choose file (embedded) or etcd`);
  }
  requireRoot();
  const { Soak } = await import("./soak.js");
  const r = await Soak.run({
    // Its own lab name by default, so a soak never collides with 'vxtun lab up'.
    lab: o.lab === "lab" ? "soak" : o.lab,
    minutes,
    seed,
    store: o.store,
    keep: o.keep,
    onProgress: (msg) => process.stderr.write(`soak: ${msg}\n`),
  });
  await writeReport(r, o.out);
  console.log(formatReport(r));
  console.log(`\nwritten: ${o.out}/soak.{json,md,png}`);
  if (!r.goals.ok) process.exitCode = 1;
}
