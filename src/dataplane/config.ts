// The dataplane's YAML config: validated once at start with zod so a bad file fails
// with one line naming the field and what to write instead, never deep in the data path.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { parseCidr, parseIpv4, parseMac } from "../encap/addr.js";
import { formatIpv6, parseIpv6 } from "../encap/addr6.js";
import { defaultRouteInterface, type Iface, listInterfaces } from "../system/ifaddr.js";
import { envName, overlayEnv } from "./config-env.js";

export const MODES = ["vxlan", "vxlan-l2", "ipip"] as const;
export type Mode = (typeof MODES)[number];

/** Bytes each mode adds on the underlay (outer IPv4 + UDP + VXLAN + inner Ethernet, or outer IPv4). */
export const TUNNEL_OVERHEAD: Record<Mode, number> = { vxlan: 50, "vxlan-l2": 50, ipip: 20 };
/** An IPv6 outer header is 20 bytes longer than an IPv4 one (VXLAN over IPv6: 70). */
export const IPV6_OUTER_EXTRA = 20;

/** Whether an underlay address (config text) is IPv6. */
export const isIpv6Underlay = (address: string): boolean => address.includes(":");

/** What `mode` adds on an IPv4 or IPv6 underlay. */
export function tunnelOverhead(mode: Mode, v6: boolean): number {
  return TUNNEL_OVERHEAD[mode] + (v6 ? IPV6_OUTER_EXTRA : 0);
}

/** An underlay address: IPv4, or (VXLAN over IPv6) a global IPv6 address without zone. */
const underlayAddr = z
  .string()
  .refine((s) => parseIpv4(s) !== undefined || parseIpv6(s) !== undefined, {
    message:
      "expected a dotted-quad IPv4 address such as 198.18.0.1, or an IPv6 address such as 2001:db8::1",
  });
export const cidr = z.string().refine((s) => parseCidr(s) !== undefined, {
  message: "expected an IPv4 prefix such as 10.244.1.0/24",
});
const mac = z.string().refine((s) => parseMac(s) !== undefined, {
  message: "expected a MAC address such as 02:42:ac:11:00:02",
});
const name = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, "use letters, digits, '-', '_' or '.'");
export const ifname = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/,
    "an interface name of at most 15 letters, digits, '-', '_' or '.'",
  );
const u8 = z.number().int().min(0).max(255);

const peer = z
  .object({
    /** The remote node's underlay address (outer destination), of local.address's family. */
    address: underlayAddr,
    /** The remote node's pod subnet, routed through the tunnel (L3 modes). */
    subnet: cidr.optional(),
    /** The remote VTEP's MAC (vxlan mode: neighbour + FDB entry). */
    vtepMac: mac.optional(),
  })
  .strict();

export const configSchema = z
  .object({
    /** Instance name: default socket/state/log paths include it, so instances never collide. */
    name: name.default("vxtun"),
    mode: z.enum(MODES).default("vxlan"),
    vni: z.number().int().min(0).max(0xffffff).default(1),
    /** UDP destination port: 8472 is Linux/flannel's default, 4789 IANA's. */
    port: z.number().int().min(1).max(65535).default(8472),
    sourcePortRange: z
      .tuple([z.number().int().min(1).max(65535), z.number().int().min(1).max(65535)])
      .refine(([lo, hi]) => lo <= hi, { message: "the first port must not exceed the second" })
      .default([32768, 61000]),
    /** The underlay; all optional: see chooseLocal() for how the defaults are found. */
    local: z
      .object({
        /** Underlay address this node sends from and listens on (flannel: --iface=ADDR). */
        address: underlayAddr.optional(),
        /**
         * The underlay's family when local.address does not say: ipv6 takes the IPv6
         * default route's interface and its first global IPv6 address (flannel-v6.1).
         */
        family: z.enum(["ipv4", "ipv6"]).optional(),
        /** Underlay interface; its MTU sets the default device MTU (flannel: --iface). */
        interface: ifname.optional(),
        /** The first interface whose name or IPv4 address matches (flannel: --iface-regex). */
        interfaceRegex: z
          .string()
          .refine(validRegex, { message: "not a valid regular expression" })
          .optional(),
        /** The address peers send to, when NAT makes it differ from ours (flannel: --public-ip). */
        publicAddress: underlayAddr.optional(),
      })
      .strict()
      .default({}),
    device: z
      .object({
        name: ifname.default("vxtun0"),
        /** Default: underlay MTU minus the tunnel overhead (50 VXLAN, 20 IPIP). */
        mtu: z.number().int().min(68).max(65535).optional(),
        /** Address put on the device, e.g. this node's VTEP address 10.244.1.0/32 as flannel does. */
        address: cidr.optional(),
        /** Fixed VTEP MAC; default derived from the instance name and local address (stable across restarts). */
        vtepMac: mac.optional(),
        /** For vxlan-l2: the Linux bridge the TAP device joins. */
        bridge: ifname.optional(),
        /** Keep the device when the process exits. Default: the agent keeps it, `vxtun dataplane` does not. */
        persist: z.boolean().optional(),
      })
      .strict()
      .default({ name: "vxtun0" }),
    peers: z.array(peer).default([]),
    /** Outer packets from other sources are dropped and counted (empty: accept any). */
    allowPeers: z.array(underlayAddr).default([]),
    fdb: z
      .object({
        ageingSeconds: z.number().int().min(1).default(300),
        maxAddress: z.number().int().min(0).default(0),
        learning: z.boolean().default(true),
        proxyArp: z.boolean().default(true),
      })
      .strict()
      .default({ ageingSeconds: 300, maxAddress: 0, learning: true, proxyArp: true }),
    policy: z
      .object({
        /**
         * Outer DF bit. VXLAN: like `ip link add … type vxlan df set|unset|inherit`
         * (default unset). IPIP: `pmtudisc` (the kernel's default: DF always set) or
         * `nopmtudisc` (DF copied from the inner packet); set/unset/inherit work too.
         */
        df: z.enum(["inherit", "set", "unset", "pmtudisc", "nopmtudisc"]).optional(),
        /** DF clear and too big for the path: fragment the inner packet or the outer one. */
        fragment: z.enum(["inner", "outer"]).default("inner"),
        ttl: z.union([z.literal("inherit"), u8.min(1)]).default(64),
        tos: z.union([z.literal("inherit"), u8]).default("inherit"),
      })
      .strict()
      .default({ fragment: "inner", ttl: 64, tos: "inherit" }),
    paths: z
      .object({
        socket: z.string().optional(),
        state: z.string().optional(),
        log: z.string().optional(),
      })
      .strict()
      .default({}),
    metrics: z
      .object({
        address: z
          .string()
          .regex(/^(\[[0-9A-Fa-f:.]+\]|[0-9.]*):\d{1,5}$/, "host:port, [IPv6]:port or :port"),
      })
      .strict()
      .optional(),
    io: z
      .object({
        batch: z.number().int().min(1).max(1024).default(64),
        slots: z.number().int().min(16).max(65536).default(1024),
        /**
         * Offloads (every mode): TUN/TAP TSO super-packets with virtio-net headers, software
         * segmentation, UDP GSO sends, UDP GRO receives and TUN GSO writes. `auto` uses
         * whatever the kernel accepts (probed at start, see `vxtun info`); `off` keeps
         * one packet per read/write.
         */
        offload: z.enum(["auto", "off"]).default("auto"),
        /** Sockets (distinct outer source ports) the fast path sends from. */
        sourcePorts: z.number().int().min(1).max(256).default(16),
        /**
         * Forwarding queues: a multi-queue TUN/TAP, one queue per thread (the main
         * thread and worker_threads), each with its own underlay sockets. The kernel
         * spreads flows over queues (the device by flow hash; VXLAN's SO_REUSEPORT
         * socket by outer 4-tuple; ipip's raw sockets each filter an inner-flow share).
         * `auto`: one per core, at most 8. vxlan-l2 workers send what they learn to the
         * main thread, which owns the FDB.
         */
        queues: z.union([z.literal("auto"), z.number().int().min(1).max(64)]).default("auto"),
      })
      .strict()
      .default({ batch: 64, slots: 1024, offload: "auto", sourcePorts: 16, queues: "auto" }),
  })
  .strict();

function validRegex(s: string): boolean {
  try {
    new RegExp(s);
    return true;
  } catch {
    return false;
  }
}

/** The config as written (file + environment), before the underlay is looked up. */
export type ConfigFile = z.infer<typeof configSchema>;

/** The underlay in effect: every field known (chooseLocal). */
export interface UnderlayLocal {
  address: string;
  interface: string;
  /** What the lease advertises: publicAddress, else address. */
  publicAddress: string;
  interfaceRegex?: string;
  /**
   * IPv6 underlay: the interface's first IPv4 address, if it has one; flannel's lease
   * needs an IPv4 PublicIP beside PublicIPv6 (the address peers send to here).
   */
  address4?: string;
}

/** A config whose underlay has been looked up on this node. */
export type Resolved<T extends { local: unknown }> = Omit<T, "local"> & { local: UnderlayLocal };
export type Config = Resolved<ConfigFile>;

/** A config error that the CLI prints as one line. */
export class ConfigError extends Error {}

/**
 * Validate `raw` against a schema; the first problem becomes a one-line ConfigError.
 * `origins` names the environment variable a path's value came from.
 */
export function parseWith<T>(
  schema: z.ZodType<T>,
  raw: unknown,
  source: string,
  origins: Map<string, string> = new Map(),
): T {
  const r = schema.safeParse(raw ?? {});
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue.path.length ? issue.path.join(".") : "(top level)";
    const from = [...origins].find(([p]) => where === p || where.startsWith(`${p}.`))?.[1];
    throw new ConfigError(`${source}: ${where}${from ? ` (from ${from})` : ""}: ${issue.message}`);
  }
  return r.data;
}

/** `raw` with the VXTUN_* environment applied, validated. */
export function parseWithEnv<T>(
  schema: z.ZodType<T>,
  raw: unknown,
  source: string,
  env: NodeJS.ProcessEnv = process.env,
): T {
  let o: ReturnType<typeof overlayEnv>;
  try {
    o = overlayEnv(schema, raw, env);
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  return parseWith(schema, o.raw, source, o.origins);
}

/** Validate an already-parsed object (no environment, no underlay lookup). */
export function parseConfig(raw: unknown, source = "config"): ConfigFile {
  return parseWith(configSchema, raw, source);
}

/** Read a YAML file (undefined for an empty one); failures are one ConfigError line. */
export function readYaml(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new ConfigError(`cannot read config ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  try {
    return parseYaml(text);
  } catch (e) {
    throw new ConfigError(`${file}: not valid YAML: ${(e as Error).message.split("\n")[0]}`);
  }
}

/** A dataplane config: the YAML file, the VXTUN_* environment over it, the underlay found. */
export async function loadConfig(file: string, env = process.env): Promise<Config> {
  return resolveLocal(parseWithEnv(configSchema, readYaml(file), file, env));
}

const hint = (key: string) => `local.${key} (${envName(["local", key])})`;

/** The family local.* asks for: local.address's, else local.family, else IPv4. */
function localFamily(local: ConfigFile["local"]): "ipv4" | "ipv6" {
  if (local.address !== undefined) {
    const fam = isIpv6Underlay(local.address) ? "ipv6" : "ipv4";
    if (local.family !== undefined && local.family !== fam) {
      throw new ConfigError(
        `local.address ${local.address} is not ${local.family}: fix ${hint("address")} or ${hint("family")}`,
      );
    }
    return fam;
  }
  return local.family ?? "ipv4";
}

/** RFC 5952 text for IPv6 (as ip prints it), IPv4 as written. */
function canonical(address: string): string {
  const a6 = isIpv6Underlay(address) ? parseIpv6(address) : undefined;
  return a6 === undefined ? address : formatIpv6(a6);
}

/**
 * The underlay, flanneld's way: local.interface (its first IPv4 address unless
 * local.address names another of its own), else the first interface whose name or an
 * address matches local.interfaceRegex, else the interface holding local.address, else
 * the default route's interface and its first IPv4 address. With an IPv6 local.address
 * (or local.family: ipv6) the same with global IPv6 addresses and the IPv6 default
 * route, as flanneld chooses flannel-v6.1's. Throws one line naming what to set.
 */
export function chooseLocal(
  local: ConfigFile["local"],
  ifaces: readonly Iface[],
  defaultIface: string | undefined,
): UnderlayLocal {
  const fam = localFamily(local);
  const v6 = fam === "ipv6";
  const famName = v6 ? "global IPv6" : "IPv4";
  const addrsOf = (i: Iface) => (v6 ? (i.ipv6 ?? []) : i.ipv4);
  const want = local.address === undefined ? undefined : canonical(local.address);
  const have = () =>
    ifaces.map((i) => `${i.name}${addrsOf(i).length ? `=${addrsOf(i).join(",")}` : ""}`).join(" ");
  const pick = (i: Iface, why: string): UnderlayLocal => {
    const addrs = addrsOf(i);
    const address = want ?? addrs[0];
    if (!address) {
      throw new ConfigError(
        `${why} ${i.name} has no ${famName} address: give it one, or set ${hint("interface")} or ${hint("address")}`,
      );
    }
    if (!addrs.includes(address)) {
      throw new ConfigError(
        `local.address ${address} is not on ${why} ${i.name} (it has ${addrs.join(", ") || "none"}): fix ${hint("address")}`,
      );
    }
    const publicAddress = local.publicAddress ?? address;
    if (isIpv6Underlay(publicAddress) !== v6) {
      throw new ConfigError(
        `local.publicAddress ${publicAddress} is not ${famName} like the underlay ${address}: fix ${hint("publicAddress")}`,
      );
    }
    return {
      address,
      interface: i.name,
      publicAddress,
      interfaceRegex: local.interfaceRegex,
      ...(v6 && i.ipv4.length > 0 ? { address4: i.ipv4[0] } : {}),
    };
  };
  if (local.interface) {
    const i = ifaces.find((x) => x.name === local.interface);
    if (!i) {
      throw new ConfigError(
        `local.interface ${local.interface} not found in this network namespace (have: ${have()}): fix ${hint("interface")}`,
      );
    }
    return pick(i, "local.interface");
  }
  if (local.interfaceRegex) {
    const re = new RegExp(local.interfaceRegex);
    const i = ifaces.find(
      (x) =>
        addrsOf(x).length > 0 &&
        (!want || addrsOf(x).includes(want)) &&
        (re.test(x.name) || addrsOf(x).some((a) => re.test(a))),
    );
    if (!i) {
      throw new ConfigError(
        `local.interfaceRegex /${local.interfaceRegex}/ matches no interface with an ${famName} address${want ? ` ${want}` : ""} (have: ${have()}): fix ${hint("interfaceRegex")}`,
      );
    }
    return pick(i, "interface");
  }
  if (want) {
    const i = ifaces.find((x) => addrsOf(x).includes(want));
    if (!i) {
      throw new ConfigError(
        `local.address ${want} is not configured on any interface here (have: ${have()}): add it, or fix ${hint("address")}`,
      );
    }
    return pick(i, "interface");
  }
  const i = ifaces.find((x) => x.name === defaultIface);
  if (!i) {
    throw new ConfigError(
      `no ${v6 ? "IPv6 " : ""}default route to find the underlay interface by: set ${hint("interface")}, ${hint("interfaceRegex")} or ${hint("address")}`,
    );
  }
  return pick(i, "the default route's interface");
}

/**
 * Peers and allowPeers of the underlay's family, and no ipip over IPv6 (RFC 2473 needs
 * the kernel's ip6tnl to be tested against; this one has none, so it is not built).
 */
export function checkUnderlayFamily(cfg: ConfigFile, local: UnderlayLocal): void {
  const v6 = isIpv6Underlay(local.address);
  if (v6 && cfg.mode === "ipip") {
    throw new ConfigError(
      `mode ipip needs an IPv4 underlay (IP in IPv6, RFC 2473, is not supported), but local.address is ${local.address}: use mode vxlan, or an IPv4 local.address`,
    );
  }
  const fam = v6 ? "IPv6" : "IPv4";
  cfg.peers.forEach((p, k) => {
    if (isIpv6Underlay(p.address) !== v6)
      throw new ConfigError(
        `peers.${k}.address ${p.address} is not ${fam} like the underlay ${local.address}`,
      );
  });
  cfg.allowPeers.forEach((a, k) => {
    if (isIpv6Underlay(a) !== v6)
      throw new ConfigError(
        `allowPeers.${k} ${a} is not ${fam} like the underlay ${local.address}`,
      );
  });
}

/** `cfg` with its underlay looked up in this network namespace. */
export async function resolveLocal<T extends ConfigFile>(cfg: T): Promise<Resolved<T>> {
  const ifaces = await listInterfaces();
  const l = cfg.local;
  const needRoute = !l.interface && !l.interfaceRegex && !l.address;
  const fam = localFamily(l);
  const local = chooseLocal(
    l,
    ifaces,
    needRoute ? await defaultRouteInterface("", fam) : undefined,
  );
  checkUnderlayFamily(cfg, local);
  return { ...cfg, local };
}

/** Default per-instance paths, so several instances on one machine never collide. */
export function instancePaths(cfg: Pick<ConfigFile, "name" | "paths">): {
  socket: string;
  state: string;
  log?: string;
} {
  return {
    socket: cfg.paths.socket ?? `/run/vxtun/${cfg.name}.sock`,
    state: cfg.paths.state ?? `/var/lib/vxtun/${cfg.name}`,
    log: cfg.paths.log,
  };
}

/**
 * The VTEP MAC: peers publish and program it, so it must survive restarts. Derived from
 * the instance name and underlay address: locally administered (0x02), unicast.
 */
export function vtepMac(cfg: Config): number {
  if (cfg.device.vtepMac) return parseMac(cfg.device.vtepMac)!;
  const h = createHash("sha256").update(`vxtun:${cfg.name}:${cfg.local.address}`).digest();
  h[0] = (h[0] & 0xfc) | 0x02;
  return h.readUIntBE(0, 6);
}

/** Device MTU: configured, else underlay MTU minus the mode's overhead (on its family). */
export function deviceMtu(cfg: Config, underlayMtu: number): number {
  return (
    cfg.device.mtu ?? underlayMtu - tunnelOverhead(cfg.mode, isIpv6Underlay(cfg.local.address))
  );
}

/** The outer DF policy in effect: the configured one or the mode's kernel default. */
export function dfPolicy(cfg: Config): "inherit" | "set" | "unset" {
  const df = cfg.policy.df ?? (cfg.mode === "ipip" ? "pmtudisc" : "unset");
  return df === "pmtudisc" ? "set" : df === "nopmtudisc" ? "inherit" : df;
}
