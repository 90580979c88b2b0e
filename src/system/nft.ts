// IP masquerade for pod traffic leaving the pod network, with nftables, in the namespace
// the agent runs in (never the root namespace of a test machine: docs/network-safety.md).
// One table of vxtun's own per instance, so it never edits rules it does not own and
// several agents on one machine never collide. Written with one `nft -f -` transaction
// that creates, flushes by deletion and re-creates the table: a restart replaces the
// rules (no duplicates) and a failure leaves the previous table as it was.
import { formatIpv4, parseCidr } from "../encap/addr.js";
import { formatIpv6, maskIpv6, parseCidr6 } from "../encap/addr6.js";
import { run } from "./exec.js";

const TABLE_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** vxtun's table for instance `name`. */
export function masqTableName(name: string): string {
  const t = `vxtun-${name}`;
  if (!TABLE_NAME.test(name)) throw new Error(`invalid nft table name ${JSON.stringify(t)}`);
  return t;
}

function canonical(prefix: string, what: string): string {
  const p = parseCidr(prefix);
  if (!p) throw new Error(`${what} ${JSON.stringify(prefix)} is not an IPv4 prefix`);
  return `${formatIpv4(p.addr)}/${p.len}`;
}

function canonical6(prefix: string, what: string): string {
  const p = parseCidr6(prefix);
  if (!p) throw new Error(`${what} ${JSON.stringify(prefix)} is not an IPv6 prefix`);
  return `${formatIpv6(maskIpv6(p.addr, p.len))}/${p.len}`;
}

/** The IPv6 pod network and this node's IPv6 subnet (dual stack). */
export interface Masq6 {
  network: string;
  subnet: string;
}

/**
 * flanneld's masquerade rules (its MasqRules), in nft words: inside the pod network
 * nothing is rewritten; multicast is left alone; pod traffic to anywhere else leaves with
 * the node's address (fully random ports, as flannel); traffic from outside the pod
 * network (the node itself) to our own subnet is left alone, and to other nodes' pods
 * leaves with the tunnel device's address.
 */
export function masqRuleset(table: string, network: string, subnet: string, v6?: Masq6): string {
  const v4 = familyRules("ip", table, canonical(network, "network"), canonical(subnet, "subnet"));
  // Dual stack: the same rules for IPv6 (flanneld's ip6tables MasqIP6Rules), ff00::/8 for
  // multicast; without it an IPv6 table left by an earlier dual-stack run goes.
  const six = v6
    ? familyRules(
        "ip6",
        table,
        canonical6(v6.network, "IPv6 network"),
        canonical6(v6.subnet, "IPv6 subnet"),
      )
    : [`table ip6 ${table}`, `delete table ip6 ${table}`];
  return [...v4, ...six, ""].join("\n");
}

function familyRules(fam: "ip" | "ip6", table: string, net: string, sub: string): string[] {
  const mcast = fam === "ip" ? "224.0.0.0/4" : "ff00::/8";
  return [
    `table ${fam} ${table}`,
    `delete table ${fam} ${table}`,
    `table ${fam} ${table} {`,
    "  chain postrouting {",
    "    type nat hook postrouting priority srcnat; policy accept;",
    `    ${fam} saddr ${net} ${fam} daddr ${net} return`,
    `    ${fam} saddr ${net} ${fam} daddr ${mcast} return`,
    `    ${fam} saddr ${net} masquerade fully-random`,
    `    ${fam} saddr != ${net} ${fam} daddr ${sub} return`,
    `    ${fam} saddr != ${net} ${fam} daddr ${net} masquerade fully-random`,
    "  }",
    "}",
  ];
}

/** `nft` in `ns`: "" = the namespace we run in, a name = `ip netns exec <name>`. */
async function nft(ns: string, args: string[], input?: string): Promise<string> {
  if (ns !== "" && !/^[A-Za-z0-9_.-]+$/.test(ns)) throw new Error(`invalid namespace ${ns}`);
  const argv = ns === "" ? ["nft", ...args] : ["ip", "netns", "exec", ns, "nft", ...args];
  const r = await run(argv, { input, timeoutMs: 15_000 });
  if (r.code !== 0) {
    const why =
      r.code === 127 && !r.stderr.trim()
        ? "nft not found (install nftables, or set ipMasq: false)"
        : "";
    throw new Error(
      `nft ${args.join(" ")}: ${why || r.stderr.trim().split("\n")[0] || `exit ${r.code}`}`,
    );
  }
  return r.stdout;
}

/** Install (or replace) the masquerade table for `name`, atomically. */
export async function applyMasquerade(
  name: string,
  network: string,
  subnet: string,
  ns = "",
  v6?: Masq6,
) {
  const table = masqTableName(name);
  await nft(ns, ["-f", "-"], masqRuleset(table, network, subnet, v6));
  return table;
}

/** Delete the table if it exists (a clean stop, `lab down`). */
export async function removeMasquerade(name: string, ns = ""): Promise<void> {
  const table = masqTableName(name);
  // Creating an empty table first makes the delete succeed whether or not it existed.
  const del = (fam: string) => `table ${fam} ${table}\ndelete table ${fam} ${table}\n`;
  await nft(ns, ["-f", "-"], del("ip") + del("ip6"));
}

/** The rules of the table, one per line (tests, `lab status`); [] when there is none. */
export async function masqueradeRules(
  name: string,
  ns = "",
  fam: "ip" | "ip6" = "ip",
): Promise<string[]> {
  const out = await nft(ns, ["list", "table", fam, masqTableName(name)]).catch(() => "");
  return out
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.startsWith(`${fam} saddr`));
}
