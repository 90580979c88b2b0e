// A verb's arguments: parsed from iproute2-style words on the CLI (positionals first,
// then `keyword value` pairs and bare flags in any order), and checked against the verb
// on the server, whoever sent them. Errors say which word was wrong and what was expected.
import { UserError } from "./errors.js";
import { type Args, usageOf, VERBS, type VerbName, type VerbSpec, type WordKind } from "./verbs.js";

/** "vtep-mac" → "vtepMac": the argument a keyword fills. */
export function argName(keyword: string): string {
  return keyword.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function wholeNumber(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0;
}

/** The CLI's words for `name` as its arguments (checked as the server will). */
export function parseWords(name: VerbName, words: readonly string[]): Record<string, unknown> {
  const spec: VerbSpec = VERBS[name];
  const usage = `usage: ${usageOf(name)}`;
  const out: Record<string, unknown> = {};
  let i = 0;
  for (const arg of spec.positional) {
    if (i >= words.length) throw new UserError(`missing ${arg.toUpperCase()}; ${usage}`);
    out[arg] = words[i++];
  }
  while (i < words.length) {
    const word = words[i++];
    const kind = Object.hasOwn(spec.keywords, word) ? spec.keywords[word] : undefined;
    if (!kind) throw new UserError(`unexpected "${word}"; ${usage}`);
    if (kind === "flag") {
      out[argName(word)] = true;
      continue;
    }
    if (i >= words.length) throw new UserError(`"${word}" needs a value; ${usage}`);
    const value = words[i++];
    if (kind === "number") {
      const n = Number(value);
      if (!wholeNumber(n)) throw new UserError(`"${word}" takes a whole number, not "${value}"`);
      out[argName(word)] = n;
    } else out[argName(word)] = value;
  }
  return checkArgs(name, out);
}

const KINDS: Record<WordKind, { ok: (v: unknown) => boolean; what: string }> = {
  string: { ok: (v) => typeof v === "string" && v !== "", what: "a non-empty string" },
  number: { ok: wholeNumber, what: "a whole number" },
  flag: { ok: (v) => typeof v === "boolean", what: "true or false" },
};

/** `args` as the verb takes them, or a UserError naming the first argument that is not. */
export function checkArgs(name: VerbName, args: unknown): Args {
  const spec: VerbSpec = VERBS[name];
  const usage = `usage: ${usageOf(name)}`;
  if (args === undefined || args === null) args = {};
  if (typeof args !== "object" || Array.isArray(args)) {
    throw new UserError(`arguments must be an object; ${usage}`);
  }
  const a = args as Record<string, unknown>;
  const kinds = new Map<string, WordKind>(spec.positional.map((p) => [p, "string"]));
  for (const [word, kind] of Object.entries(spec.keywords)) kinds.set(argName(word), kind);
  if (spec.json) kinds.set("json", "flag");
  for (const p of spec.positional) {
    if (a[p] === undefined) throw new UserError(`missing ${p.toUpperCase()}; ${usage}`);
  }
  for (const word of spec.required ?? []) {
    if (a[argName(word)] === undefined) throw new UserError(`missing ${word}; ${usage}`);
  }
  for (const [key, v] of Object.entries(a)) {
    const kind = kinds.get(key);
    if (!kind) throw new UserError(`unexpected "${key}"; ${usage}`);
    if (v !== undefined && !KINDS[kind].ok(v)) {
      throw new UserError(`"${key}" takes ${KINDS[kind].what}; ${usage}`);
    }
  }
  return a as Args;
}
