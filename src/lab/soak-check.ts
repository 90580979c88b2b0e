// The soak's end-of-run audit, node by node, against what should be there: one host veth
// and one host-local reservation per live pod, and in the kernel and the dataplane
// exactly one route, neighbour and FDB entry per live peer. Anything else is a leak or
// a leftover; anything missing is a fault too.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { controlCall } from "../api/client.js";
import { ipJson } from "../system/iproute.js";
import type { LabNode, LabPod, LabState } from "./lab.js";

export interface Peer {
  address: string;
  subnet: string;
  vtepMac: string;
}

export interface NodeAudit {
  node: string;
  /** host-local reservations whose container is not a live pod. */
  leakedAddresses: string[];
  leftoverVeths: string[];
  leftoverKernelRoutes: string[];
  leftoverRoutes: string[];
  leftoverFdb: string[];
  leftoverNeigh: string[];
  /** What a live pod or peer should have and does not. */
  missing: string[];
}

/** host-local's files: address -> owning container ID. */
export function reservations(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const n of names.filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f))) {
    try {
      out.set(n, readFileSync(join(dir, n), "utf8").split(/\r?\n/)[0].trim());
    } catch {
      // released while we looked
    }
  }
  return out;
}

export function ipamDir(s: LabState, node: string): string {
  return join(s.dir, node, "ipam", `vxtun-${s.name}`);
}

function diff(have: string[], want: string[]): { extra: string[]; missing: string[] } {
  return {
    extra: have.filter((h) => !want.includes(h)),
    missing: want.filter((w) => !have.includes(w)),
  };
}

export async function auditNode(
  s: LabState,
  node: LabNode,
  pods: LabPod[],
  peers: Peer[],
  device: string,
): Promise<NodeAudit> {
  const mine = pods.filter((p) => p.node === node.name);
  const ids = mine.map((p) => p.containerId);
  const a: NodeAudit = {
    node: node.name,
    leakedAddresses: [],
    leftoverVeths: [],
    leftoverKernelRoutes: [],
    leftoverRoutes: [],
    leftoverFdb: [],
    leftoverNeigh: [],
    missing: [],
  };
  const res = reservations(ipamDir(s, node.name));
  for (const [ip, id] of res) if (!ids.includes(id)) a.leakedAddresses.push(`${ip} (${id})`);
  for (const p of mine) {
    if (![...res.values()].includes(p.containerId)) a.missing.push(`reservation of ${p.name}`);
  }

  const links = await ipJson<{ ifname: string; ifalias?: string; link_type?: string }[]>(node.ns, [
    "-d",
    "link",
    "show",
    "type",
    "veth",
  ]);
  const vethIds = links
    .map((l) => /^vxtun\/([^/]+)\//.exec(l.ifalias ?? "")?.[1])
    .filter((x): x is string => !!x);
  const v = diff(vethIds, ids);
  a.leftoverVeths.push(...v.extra);
  a.missing.push(...v.missing.map((id) => `veth of ${id}`));

  const want = peers.map((p) => p.subnet);
  const kr = await ipJson<{ dst: string }[]>(node.ns, ["route", "show", "dev", device]);
  const k = diff(
    kr.map((r) => r.dst),
    want,
  );
  a.leftoverKernelRoutes.push(...k.extra);
  a.missing.push(...k.missing.map((d) => `kernel route ${d}`));

  const call = (op: string) => controlCall(node.socket, op, { json: true }, 3000);
  const routes = (await call("route.show")) as { dst: string }[];
  const r = diff(
    routes.map((x) => x.dst),
    want,
  );
  a.leftoverRoutes.push(...r.extra);
  a.missing.push(...r.missing.map((d) => `route ${d}`));
  const fdb = (await call("fdb.show")) as { mac: string; dst: string }[];
  const f = diff(
    fdb.map((x) => `${x.mac} dst ${x.dst}`),
    peers.map((p) => `${p.vtepMac} dst ${p.address}`),
  );
  a.leftoverFdb.push(...f.extra);
  a.missing.push(...f.missing.map((d) => `fdb ${d}`));
  const neigh = (await call("neigh.show")) as { dst: string; lladdr?: string }[];
  const n = diff(
    neigh.map((x) => `${x.dst} lladdr ${x.lladdr ?? "-"}`),
    peers.map((p) => `${p.subnet.split("/")[0]} lladdr ${p.vtepMac}`),
  );
  a.leftoverNeigh.push(...n.extra);
  a.missing.push(...n.missing.map((d) => `neigh ${d}`));
  return a;
}
