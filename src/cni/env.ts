// The CNI_* environment of one invocation, checked before anything runs: names that end
// up in link names and aliases and on the filesystem are validated here, once.
import { CniCode, CniError } from "./errors.js";

export type Command = "ADD" | "DEL" | "CHECK" | "GC" | "STATUS" | "VERSION";
const COMMANDS: readonly Command[] = ["ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION"];

export interface CniEnv {
  command: Command;
  containerId: string;
  netns: string;
  ifname: string;
  args: string;
  /** CNI_PATH split on ':' (empty entries dropped). */
  path: string[];
  /** The invocation's whole environment, handed to delegated (IPAM) plugins. */
  raw: Record<string, string>;
}

/** Spec: alphanumeric first, then alphanumerics, '_', '.', '-'. */
const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
/**
 * Stricter than the spec's rule (no '/', ':' or whitespace): the name also goes into
 * link names, aliases and file names, so shell-ish characters are refused outright.
 */
const IFNAME = /^[A-Za-z0-9_.+@-]{1,15}$/;

const NEEDS: Record<Command, string[]> = {
  ADD: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"],
  CHECK: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"],
  DEL: ["CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"],
  GC: ["CNI_PATH"],
  STATUS: ["CNI_PATH"],
  VERSION: [],
};

function checkIfname(name: string): void {
  if (!IFNAME.test(name) || name === "." || name === "..") {
    throw new CniError(
      CniCode.invalidEnv,
      `invalid interface name ${JSON.stringify(name)}`,
      "CNI_IFNAME must be 1-15 characters of letters, digits, '_', '.', '+', '@' or '-'",
    );
  }
}

/**
 * The spec sets no limit, but every host veth records its attachment in the link alias
 * "vxtun/<containerID>/<ifname>", which the kernel caps at 255 bytes (IFALIASZ - 1);
 * with a 15-character ifname that leaves 233. Runtimes use 64.
 */
export const MAX_CONTAINER_ID = 255 - "vxtun//".length - 15;

function checkContainerId(id: string): void {
  if (id.length > MAX_CONTAINER_ID) {
    throw new CniError(
      CniCode.invalidEnv,
      `CNI_CONTAINERID is ${id.length} characters long`,
      `vxtun accepts container IDs of at most ${MAX_CONTAINER_ID} characters (runtimes use 64)`,
    );
  }
  if (!CONTAINER_ID.test(id)) {
    throw new CniError(
      CniCode.invalidEnv,
      `invalid container ID ${JSON.stringify(id)}`,
      "CNI_CONTAINERID must start with a letter or digit, then letters, digits, '_', '.' or '-'",
    );
  }
}

export function parseEnv(env: Record<string, string | undefined>): CniEnv {
  const raw: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) raw[k] = v;
  const cmd = raw.CNI_COMMAND ?? "";
  if (!cmd) throw new CniError(CniCode.invalidEnv, "required env variables [CNI_COMMAND] missing");
  if (!(COMMANDS as readonly string[]).includes(cmd)) {
    throw new CniError(
      CniCode.invalidEnv,
      `unknown CNI_COMMAND ${JSON.stringify(cmd)}`,
      `expected one of ${COMMANDS.join(", ")}`,
    );
  }
  const command = cmd as Command;
  const missing = NEEDS[command].filter((k) => !raw[k]);
  if (missing.length) {
    throw new CniError(CniCode.invalidEnv, `required env variables [${missing.join(",")}] missing`);
  }
  const e: CniEnv = {
    command,
    containerId: raw.CNI_CONTAINERID ?? "",
    netns: raw.CNI_NETNS ?? "",
    ifname: raw.CNI_IFNAME ?? "",
    args: raw.CNI_ARGS ?? "",
    path: (raw.CNI_PATH ?? "").split(":").filter(Boolean),
    raw,
  };
  if (e.containerId) checkContainerId(e.containerId);
  if (e.ifname) checkIfname(e.ifname);
  if (e.netns && !e.netns.startsWith("/")) {
    throw new CniError(
      CniCode.invalidEnv,
      `CNI_NETNS ${JSON.stringify(e.netns)} is not an absolute path`,
    );
  }
  return e;
}
