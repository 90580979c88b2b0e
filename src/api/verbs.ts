// The control verbs: every operation the control socket serves, written once. The CLI
// builds its commands, help and usage lines from this table and parses iproute2-style
// words into a verb's arguments; the server checks a request's arguments against the
// same entry before the handler runs (src/api/args.ts). Table verbs speak iproute2's
// word order (`fdb add MAC dst IP`, `neigh add IP lladdr MAC`, `route add PREFIX via GW
// onlink`) so people who know `ip` and `bridge` need no manual.
// No imports: the CLI loads this on every call.

export type WordKind = "string" | "number" | "flag";

export interface VerbSpec {
  /** The CLI's words after `vxtun` when they differ from the name's ("fdb.add" → fdb add). */
  readonly command?: string;
  /** One line for `vxtun help`. */
  readonly summary: string;
  /** The arguments after the command words, in usage notation ("MAC dst IP"). */
  readonly usage: string;
  /** Leading words, each required; the argument is named as listed. */
  readonly positional: readonly string[];
  /** `keyword value` pairs and bare flags; the argument is the keyword in camelCase. */
  readonly keywords: Readonly<Record<string, WordKind>>;
  /** Keywords that must be given. */
  readonly required?: readonly string[];
  /** Takes a `json` flag (`-j, --json` on the CLI): JSON instead of text. */
  readonly json?: boolean;
}

const show = (table: string) =>
  ({
    summary: `print the ${table} table`,
    usage: "",
    positional: [],
    keywords: {},
    json: true,
  }) as const;

export const VERBS = {
  "fdb.show": show("fdb"),
  "fdb.add": {
    summary: "add an entry (MAC 00:00:00:00:00:00 appends a flood remote)",
    usage: "MAC dst IP",
    positional: ["mac"],
    keywords: { dst: "string" },
    required: ["dst"],
  },
  "fdb.del": {
    summary: "delete an entry, or one flood remote with dst",
    usage: "MAC [dst IP]",
    positional: ["mac"],
    keywords: { dst: "string" },
  },
  "neigh.show": show("neighbour"),
  "neigh.add": {
    summary: "add a permanent neighbour",
    usage: "IP lladdr MAC",
    positional: ["ip"],
    keywords: { lladdr: "string" },
    required: ["lladdr"],
  },
  "neigh.del": { summary: "delete a neighbour", usage: "IP", positional: ["ip"], keywords: {} },
  "route.show": show("route"),
  "route.add": {
    summary: "add a route (remote IP: ipip's outer destination)",
    usage: "PREFIX [via GW] [onlink] [mtu N] [remote IP]",
    positional: ["prefix"],
    keywords: { via: "string", mtu: "number", onlink: "flag", remote: "string" },
  },
  "route.del": { summary: "delete a route", usage: "PREFIX", positional: ["prefix"], keywords: {} },
  "peer.show": show("peer"),
  "peer.add": {
    summary: "add a remote node: route, neighbour and FDB entry in one step",
    usage: "NODE-IP subnet PREFIX [vtep-mac MAC]",
    positional: ["address"],
    keywords: { subnet: "string", "vtep-mac": "string" },
  },
  "peer.del": {
    summary: "remove a remote node and what peer add made",
    usage: "NODE-IP",
    positional: ["address"],
    keywords: {},
  },
  stats: {
    summary: "packet, byte and batch counters, and drops by reason",
    usage: "",
    positional: [],
    keywords: {},
    json: true,
  },
  info: {
    summary: "the instance's mode, device, MTUs, addresses and offload state",
    usage: "",
    positional: [],
    keywords: {},
    json: true,
  },
  agent: {
    command: "agent status",
    summary: "the node agent's subnet, lease, store and peers",
    usage: "",
    positional: [],
    keywords: {},
    json: true,
  },
} as const satisfies Record<string, VerbSpec>;

export type VerbName = keyof typeof VERBS;

/** A verb's arguments as they travel: strings, whole numbers and flags. */
export type Args = Readonly<Record<string, string | number | boolean | undefined>>;

export type Handler = (args: Args) => unknown;

/** What a server answers with: a handler per verb it serves. */
export type Handlers = Partial<Record<VerbName, Handler>>;

export function isVerb(op: unknown): op is VerbName {
  return typeof op === "string" && Object.hasOwn(VERBS, op);
}

/** The CLI's words for a verb: "fdb.add" → ["fdb", "add"]. */
export function commandWords(name: VerbName): string[] {
  const spec: VerbSpec = VERBS[name];
  return (spec.command ?? name.replace(".", " ")).split(" ");
}

/** What follows the command words: "MAC dst IP", "[-j|--json]". */
export function argsUsage(name: VerbName): string {
  const spec: VerbSpec = VERBS[name];
  return [spec.usage, spec.json ? "[-j|--json]" : ""].filter(Boolean).join(" ");
}

/** The usage line: "fdb add MAC dst IP". */
export function usageOf(name: VerbName): string {
  return [...commandWords(name), argsUsage(name)].filter(Boolean).join(" ");
}

/** Table verbs are grouped under one CLI command; its help line. */
export const GROUPS: Readonly<Record<string, string>> = {
  fdb: "VXLAN forwarding database (like 'bridge fdb')",
  neigh: "neighbour table (like 'ip neigh')",
  route: "overlay routes (like 'ip route')",
  peer: "remote nodes: route + neighbour + FDB entry in one step",
};
