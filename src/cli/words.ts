// iproute2-style argument words: positionals first, then `keyword value` pairs and bare
// flags, in any order. Errors say which word was wrong and what was expected.
import { UserError } from "../dataplane/control-socket.js";

export interface WordSpec {
  usage: string;
  positional: string[];
  keywords: Record<string, "string" | "number" | "flag">;
}

export function parseWords(words: readonly string[], spec: WordSpec): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let i = 0;
  for (const name of spec.positional) {
    if (i >= words.length)
      throw new UserError(`missing ${name.toUpperCase()}; usage: ${spec.usage}`);
    out[name] = words[i++];
  }
  while (i < words.length) {
    const word = words[i++];
    const kind = spec.keywords[word];
    if (!kind) throw new UserError(`unexpected "${word}"; usage: ${spec.usage}`);
    const key = word.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    if (kind === "flag") {
      out[key] = true;
      continue;
    }
    if (i >= words.length) throw new UserError(`"${word}" needs a value; usage: ${spec.usage}`);
    const value = words[i++];
    if (kind === "number") {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 0) {
        throw new UserError(`"${word}" takes a whole number, not "${value}"`);
      }
      out[key] = n;
    } else out[key] = value;
  }
  return out;
}
