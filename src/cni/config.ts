// The plugin's network configuration (stdin), validated by hand: the slow path starts a
// fresh Node process per call, so the decoder stays dependency-free and quick to load.
import { CniCode, CniError } from "./errors.js";
import { checkSupported } from "./version.js";

export interface Attachment {
  containerID: string;
  ifname: string;
}

export interface NetConf {
  cniVersion: string;
  name: string;
  type: string;
  /** flannel-style node state written by the agent. */
  stateFile: string;
  /** "bridge": host veth on the node bridge; "ptp": routed /32 per pod, no bridge. */
  mode: "bridge" | "ptp";
  /** Overrides VXTUN_BRIDGE of the state file. */
  bridge?: string;
  hairpinMode: boolean;
  /** Overrides FLANNEL_MTU. */
  mtu?: number;
  /** IPAM section as given (undefined: host-local over the node's subnet). */
  ipam?: Record<string, unknown>;
  /** host-local's data directory when we fill the IPAM section in. */
  dataDir: string;
  dns?: Record<string, unknown>;
  prevResult?: unknown;
  validAttachments?: Attachment[];
  /** The whole decoded object: delegated plugins get it back with `ipam` filled in. */
  raw: Record<string, unknown>;
}

export const DEFAULT_STATE_FILE = "/run/vxtun/subnet.env";
export const DEFAULT_DATA_DIR = "/var/lib/cni/networks";
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const IFNAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

function bad(msg: string, details = ""): never {
  throw new CniError(CniCode.invalidConfig, msg, details);
}

function optString(o: Record<string, unknown>, k: string): string | undefined {
  const v = o[k];
  if (v === undefined) return undefined;
  if (typeof v !== "string" || v === "") bad(`"${k}" must be a non-empty string`);
  return v;
}

/** Only cniVersion is read: VERSION and error replies need it before full validation. */
export function peekVersion(stdin: string): string | undefined {
  try {
    const o = JSON.parse(stdin) as { cniVersion?: unknown };
    return typeof o?.cniVersion === "string" ? o.cniVersion : undefined;
  } catch {
    return undefined;
  }
}

export function parseNetConf(stdin: string, defaultStateFile = DEFAULT_STATE_FILE): NetConf {
  let raw: unknown;
  try {
    raw = JSON.parse(stdin);
  } catch (e) {
    throw new CniError(
      CniCode.decode,
      "failed to decode network configuration",
      (e as Error).message,
    );
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new CniError(CniCode.decode, "network configuration is not a JSON object");
  }
  const o = raw as Record<string, unknown>;
  // The reference skel treats a missing version as 0.1.0, which nobody supports any more.
  const cniVersion = typeof o.cniVersion === "string" ? o.cniVersion : "0.1.0";
  checkSupported(cniVersion);
  const name = o.name;
  if (typeof name !== "string" || !NAME.test(name)) {
    bad(
      `invalid network name ${JSON.stringify(name)}`,
      "a name starts with a letter or digit, then letters, digits, '_', '.' or '-'",
    );
  }
  const mode = o.mode ?? "bridge";
  if (mode !== "bridge" && mode !== "ptp")
    bad(`"mode" must be "bridge" or "ptp", not ${JSON.stringify(mode)}`);
  const bridge = optString(o, "bridge");
  if (bridge !== undefined && !IFNAME.test(bridge))
    bad(`invalid bridge name ${JSON.stringify(bridge)}`);
  const mtu = o.mtu;
  if (
    mtu !== undefined &&
    (typeof mtu !== "number" || !Number.isInteger(mtu) || mtu < 576 || mtu > 65535)
  ) {
    bad(`"mtu" must be an integer 576..65535`);
  }
  const hairpin = o.hairpinMode ?? false;
  if (typeof hairpin !== "boolean") bad(`"hairpinMode" must be true or false`);
  const ipam = o.ipam;
  if (ipam !== undefined && (typeof ipam !== "object" || ipam === null || Array.isArray(ipam))) {
    bad(`"ipam" must be an object`);
  }
  if (ipam !== undefined) {
    const t = (ipam as Record<string, unknown>).type;
    if (typeof t !== "string" || !NAME.test(t)) bad(`"ipam.type" must name an IPAM plugin`);
  }
  const conf: NetConf = {
    cniVersion,
    name,
    type: typeof o.type === "string" ? o.type : "vxtun",
    stateFile: optString(o, "stateFile") ?? defaultStateFile,
    mode,
    hairpinMode: hairpin,
    dataDir: optString(o, "dataDir") ?? DEFAULT_DATA_DIR,
    raw: o,
  };
  if (bridge !== undefined) conf.bridge = bridge;
  if (typeof mtu === "number") conf.mtu = mtu;
  if (ipam !== undefined) conf.ipam = ipam as Record<string, unknown>;
  if (typeof o.dns === "object" && o.dns !== null) conf.dns = o.dns as Record<string, unknown>;
  if (o.prevResult !== undefined) conf.prevResult = o.prevResult;
  const valid = o["cni.dev/valid-attachments"];
  if (valid !== undefined) {
    if (!Array.isArray(valid)) bad(`"cni.dev/valid-attachments" must be a list`);
    conf.validAttachments = valid.map((a, i) => {
      const x = a as Partial<Attachment> | null;
      if (typeof x?.containerID !== "string" || typeof x.ifname !== "string") {
        bad(`"cni.dev/valid-attachments"[${i}] needs containerID and ifname`);
      }
      return { containerID: x.containerID, ifname: x.ifname };
    });
  }
  return conf;
}
