// iproute2-style abbreviations: a command word may be cut to any prefix that names one
// command at its level (`vxtun route s`, `vxtun nei sh`, `vxtun stats` as `vxtun sta`
// would not do: stats and status). An ambiguous prefix is an error that lists the
// candidates. The words are expanded before commander parses them, so help, usage and
// errors all see the full names.
import type { Command } from "commander";
import { UserError } from "../api/errors.js";

/** Whether `flag` is one of `cmd`'s options that takes a value (`--name NAME`). */
function takesValue(cmd: Command, flag: string): boolean {
  const name = flag.split("=")[0];
  if (name !== flag) return false; // --name=value carries its value
  const o = cmd.options.find((o) => o.long === name || o.short === name);
  return !!o && (o.required || o.optional);
}

/** argv (node, script, words...) with every abbreviated command word written out. */
export function expandAbbreviations(program: Command, argv: readonly string[]): string[] {
  const out = argv.slice(0, 2);
  let cmd = program;
  // Options of the commands on the path so far (global ones stay valid below).
  const scopes: Command[] = [program];
  for (let i = 2; i < argv.length; i++) {
    const word = argv[i];
    out.push(word);
    if (word === "--") {
      out.push(...argv.slice(i + 1));
      break;
    }
    if (word.startsWith("-")) {
      if (scopes.some((c) => takesValue(c, word)) && i + 1 < argv.length) out.push(argv[++i]);
      continue;
    }
    if (cmd.commands.length === 0 || word === "help") {
      // An argument: what follows belongs to the command (e.g. lab exec's command line).
      out.push(...argv.slice(i + 1));
      break;
    }
    const names = cmd.commands.map((c) => c.name());
    const exact = names.includes(word);
    const matches = exact ? [word] : names.filter((n) => n.startsWith(word)).sort();
    if (matches.length > 1) {
      const path = ["vxtun", ...scopes.slice(1).map((c) => c.name()), word].join(" ");
      throw new UserError(`"${path}" is ambiguous: ${matches.join(", ")}`);
    }
    if (matches.length === 0) continue; // commander reports the unknown command
    out[out.length - 1] = matches[0];
    cmd = cmd.commands.find((c) => c.name() === matches[0]) as Command;
    scopes.push(cmd);
  }
  return out;
}
