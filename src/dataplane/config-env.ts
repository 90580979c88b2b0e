// Every config key can come from the environment, so one YAML file (a DaemonSet's
// ConfigMap) serves every node and each node adds what differs. The variable names are
// derived from the schema, never kept by hand: VXTUN_ + the key's path, camelCase turned
// into UPPER_SNAKE and path segments joined by "_" (local.interfaceRegex ->
// VXTUN_LOCAL_INTERFACE_REGEX, store.endpoints -> VXTUN_STORE_ENDPOINTS, ipMasq ->
// VXTUN_IP_MASQ). Values: numbers and booleans (true/false/1/0/yes/no) as such, lists
// comma-separated, a value starting with '[' or '{' as JSON; an empty variable is unset.
// Applied over the YAML before validation, so a bad value fails like a bad file does.
import type { z } from "zod";

interface Def {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  options?: z.ZodType[];
  element?: z.ZodType;
  items?: z.ZodType[];
}

const WRAPPERS = new Set(["optional", "default", "prefault", "nullable", "readonly", "catch"]);

function defOf(s: z.ZodType): Def {
  return (s as unknown as { _zod: { def: Def } })._zod.def;
}

/** The schema under optional/default/pipe wrappers. */
function unwrap(s: z.ZodType): Def {
  let d = defOf(s);
  for (;;) {
    if (WRAPPERS.has(d.type) && d.innerType) d = defOf(d.innerType);
    else if (d.type === "pipe" && d.in) d = defOf(d.in);
    else return d;
  }
}

/** "interfaceRegex" -> "INTERFACE_REGEX". */
function snake(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();
}

export function envName(path: readonly string[]): string {
  return `VXTUN_${path.map(snake).join("_")}`;
}

export interface EnvKey {
  path: string[];
  leaf: z.ZodType;
}

/** Every settable key of `schema`: variable name -> path and the schema of its value. */
export function envKeys(schema: z.ZodType): Map<string, EnvKey> {
  const out = new Map<string, EnvKey>();
  const walk = (s: z.ZodType, path: string[]) => {
    const d = unwrap(s);
    const objects = d.options?.every((o) => unwrap(o).type === "object");
    if (d.type === "object" && d.shape) {
      for (const [k, v] of Object.entries(d.shape)) walk(v, [...path, k]);
    } else if (d.type === "union" && objects && d.options) {
      // A discriminated union (store: file | etcd): the keys of every variant.
      for (const o of d.options) walk(o, path);
    } else if (path.length > 0) {
      const name = envName(path);
      const seen = out.get(name);
      if (seen && seen.path.join(".") !== path.join(".")) {
        throw new Error(`${name} would name both ${seen.path.join(".")} and ${path.join(".")}`);
      }
      if (!seen) out.set(name, { path, leaf: s });
    }
  };
  walk(schema, []);
  return out;
}

const TRUE = new Set(["true", "1", "yes", "on"]);
const FALSE = new Set(["false", "0", "no", "off"]);
const NUMBER = /^-?\d+(\.\d+)?$/;

/** The text of one variable as the value its schema expects (zod judges the result). */
function coerce(leaf: z.ZodType, text: string): unknown {
  const d = unwrap(leaf);
  switch (d.type) {
    case "number":
      return NUMBER.test(text) ? Number(text) : text;
    case "boolean": {
      const l = text.toLowerCase();
      return TRUE.has(l) ? true : FALSE.has(l) ? false : text;
    }
    case "array":
      return text
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean)
        .map((e) => (d.element ? coerce(d.element, e) : e));
    case "tuple":
      return text.split(",").map((s, i) => (d.items?.[i] ? coerce(d.items[i], s.trim()) : s));
    case "union":
      return NUMBER.test(text) && d.options?.some((o) => unwrap(o).type === "number")
        ? Number(text)
        : text;
    default:
      return text;
  }
}

export interface Overlaid {
  raw: unknown;
  /** Dotted config path -> the variable it came from (for error messages). */
  origins: Map<string, string>;
}

/** `raw` (the parsed YAML) with every VXTUN_* variable that names a key of `schema` applied. */
export function overlayEnv(
  schema: z.ZodType,
  raw: unknown,
  env: NodeJS.ProcessEnv = process.env,
): Overlaid {
  const origins = new Map<string, string>();
  const isObj = (v: unknown): v is Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v);
  const root: Record<string, unknown> = isObj(raw) ? structuredClone(raw) : {};
  for (const [name, { path, leaf }] of envKeys(schema)) {
    const text = env[name]?.trim();
    if (!text) continue;
    let value: unknown;
    if (text.startsWith("[") || text.startsWith("{")) {
      try {
        value = JSON.parse(text);
      } catch {
        throw new SyntaxError(`${name}: starts with '${text[0]}' but is not valid JSON`);
      }
    } else {
      value = coerce(leaf, text);
    }
    let node = root;
    for (const k of path.slice(0, -1)) {
      if (!isObj(node[k])) node[k] = {};
      node = node[k] as Record<string, unknown>;
    }
    node[path[path.length - 1]] = value;
    origins.set(path.join("."), name);
  }
  return { raw: raw === undefined && origins.size === 0 ? raw : root, origins };
}
