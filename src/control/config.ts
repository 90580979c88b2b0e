// `vxtun agent`'s config: the dataplane's config plus what the node agent needs (pod
// network, store, lease TTL, node bridge, state file, CNI socket). device.address and
// peers are the agent's to fill in: the subnet comes from the store, peers from leases.
import { z } from "zod";
import {
  cidr,
  configSchema,
  ifname,
  parseWith,
  parseWithEnv,
  type Resolved,
  readYaml,
  resolveLocal,
} from "../dataplane/config.js";
import { parseCidr } from "../encap/addr.js";
import { parseIpv6 } from "../encap/addr6.js";
import { parseNet6 } from "./ip6net.js";

const fileStore = z
  .object({ type: z.literal("file"), dir: z.string().default("/var/lib/vxtun/store") })
  .strict();
const etcdStore = z
  .object({
    type: z.literal("etcd"),
    endpoints: z
      .array(z.string().regex(/^https?:\/\/[^\s/]+$/, "an endpoint such as http://127.0.0.1:2379"))
      .min(1),
    prefix: z.string().startsWith("/").default("/coreos.com/network"),
    /** TLS: the CA that signed etcd's certificate (flannel: -etcd-cafile). */
    caFile: z.string().min(1).optional(),
    /** TLS client certificate and its key (flannel: -etcd-certfile, -etcd-keyfile). */
    certFile: z.string().min(1).optional(),
    keyFile: z.string().min(1).optional(),
    /** etcd authentication (flannel: -etcd-username, -etcd-password). */
    username: z.string().min(1).optional(),
    password: z.string().optional(),
    /** The password read from a file (a mounted Secret), trailing newline dropped. */
    passwordFile: z.string().min(1).optional(),
  })
  .strict()
  .refine((s) => !s.certFile === !s.keyFile, {
    message: "certFile and keyFile go together: set both or neither",
    path: ["certFile"],
  })
  .refine((s) => s.password === undefined || s.passwordFile === undefined, {
    message: "set password or passwordFile, not both",
    path: ["passwordFile"],
  })
  .refine((s) => !s.username === (s.password === undefined && !s.passwordFile), {
    message: "username needs password or passwordFile, and they need username",
    path: ["username"],
  });

export const agentConfigSchema = configSchema
  .extend({
    network: cidr.default("10.244.0.0/16"),
    subnetLen: z.number().int().min(8).max(30).default(24),
    /** Dual stack (flannel's EnableIPv6 + IPv6Network): pods get an address of each family. */
    ipv6Network: z
      .string()
      .refine(
        (s) => parseNet6(s) !== undefined,
        "an IPv6 prefix with host bits clear, e.g. fd00::/48",
      )
      .optional(),
    /** Length of each node's IPv6 subnet (flannel's IPv6SubnetLen; 64 as flannel picks). */
    ipv6SubnetLen: z.number().int().min(8).max(126).default(64),
    /** The node's IPv6 underlay address for the lease's PublicIPv6 (flanneld --public-ipv6). */
    publicIpv6: z
      .string()
      .refine((s) => parseIpv6(s) !== undefined, "an IPv6 address")
      .optional(),
    store: z
      .discriminatedUnion("type", [fileStore, etcdStore])
      .default({ type: "file", dir: "/var/lib/vxtun/store" }),
    /** flannel's 24 h; renewal is documented in lease.ts. */
    leaseTtlSeconds: z.number().int().min(2).default(86400),
    /** Masquerade pod traffic leaving the pod network (flannel: --ip-masq). */
    ipMasq: z.boolean().default(true),
    bridge: ifname.default("vxbr0"),
    stateFile: z.string().optional(),
    cniSocket: z.string().optional(),
  })
  .refine((c) => c.peers.length === 0, {
    message: "the agent learns peers from the store: remove 'peers'",
    path: ["peers"],
  })
  .refine((c) => !c.device.address, {
    message: "the agent sets the device address from its subnet: remove it",
    path: ["device", "address"],
  })
  .refine((c) => c.subnetLen > (parseCidr(c.network)?.len ?? 32), {
    message: "must be longer than the network's prefix",
    path: ["subnetLen"],
  })
  .refine((c) => !c.ipv6Network || c.ipv6SubnetLen > (parseNet6(c.ipv6Network)?.len ?? 0), {
    message: "must be longer than ipv6Network's prefix",
    path: ["ipv6SubnetLen"],
  });

export type AgentConfigFile = z.infer<typeof agentConfigSchema>;
export type AgentConfig = Resolved<AgentConfigFile>;
export type EtcdConfig = z.infer<typeof etcdStore>;

/** Validate an already-parsed object (no environment, no underlay lookup). */
export function parseAgentConfig(raw: unknown, source = "config"): AgentConfigFile {
  return parseWith(agentConfigSchema, raw, source);
}

/** The agent's config: the YAML file, the VXTUN_* environment over it, the underlay found. */
export async function loadAgentConfig(file: string, env = process.env): Promise<AgentConfig> {
  return resolveLocal(parseWithEnv(agentConfigSchema, readYaml(file), file, env));
}

/** The agent's own files, per instance name so several agents share a machine. */
export function agentPaths(cfg: Pick<AgentConfigFile, "name" | "stateFile" | "cniSocket">): {
  stateFile: string;
  cniSocket: string;
} {
  return {
    stateFile: cfg.stateFile ?? `/run/vxtun/${cfg.name}/subnet.env`,
    cniSocket: cfg.cniSocket ?? `/run/vxtun/${cfg.name}/cni.sock`,
  };
}
