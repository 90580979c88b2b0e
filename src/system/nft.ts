// IP masquerade for pod traffic leaving the pod network, with nftables, in the namespace
// the agent runs in (never the root namespace of a test machine: docs/network-safety.md).
// One table of vxtun's own per instance, so it never edits rules it does not own and
// several agents on one machine never collide. Written with one `nft -f -` transaction
// that creates, flushes by deletion and re-creates the table: a restart replaces the
// rules (no duplicates) and a failure leaves the previous table as it was.
import { formatIpv4, parseCidr } from "../encap/addr.js";
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

/**
 * flanneld's masquerade rules (its MasqRules), in nft words: inside the pod network
 * nothing is rewritten; multicast is left alone; pod traffic to anywhere else leaves with
 * the node's address (fully random ports, as flannel); traffic from outside the pod
 * network (the node itself) to our own subnet is left alone, and to other nodes' pods
 * leaves with the tunnel device's address.
 */
export function masqRuleset(table: string, network: string, subnet: string): string {
  const net = canonical(network, "network");
  const sub = canonical(subnet, "subnet");
  return [
    `table ip ${table}`,
    `delete table ip ${table}`,
    `table ip ${table} {`,
    "  chain postrouting {",
    "    type nat hook postrouting priority srcnat; policy accept;",
    `    ip saddr ${net} ip daddr ${net} return`,
    `    ip saddr ${net} ip daddr 224.0.0.0/4 return`,
    `    ip saddr ${net} masquerade fully-random`,
    `    ip saddr != ${net} ip daddr ${sub} return`,
    `    ip saddr != ${net} ip daddr ${net} masquerade fully-random`,
    "  }",
    "}",
    "",
  ].join("\n");
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
export async function applyMasquerade(name: string, network: string, subnet: string, ns = "") {
  const table = masqTableName(name);
  await nft(ns, ["-f", "-"], masqRuleset(table, network, subnet));
  return table;
}

/** Delete the table if it exists (a clean stop, `lab down`). */
export async function removeMasquerade(name: string, ns = ""): Promise<void> {
  const table = masqTableName(name);
  // Creating an empty table first makes the delete succeed whether or not it existed.
  await nft(ns, ["-f", "-"], `table ip ${table}\ndelete table ip ${table}\n`);
}

/** The rules of the table, one per line (tests, `lab status`); [] when there is none. */
export async function masqueradeRules(name: string, ns = ""): Promise<string[]> {
  const out = await nft(ns, ["list", "table", "ip", masqTableName(name)]).catch(() => "");
  return out
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => /^ip saddr/.test(l));
}
