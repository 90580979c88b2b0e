// `vxtun`: one CLI for the dataplane, its tables and counters, the node agent, labs and
// benchmarks. The commands that talk to a running instance are built from the control
// verbs' table (src/api/verbs.ts), so a verb, its help and its usage are written once.
import { Command, CommanderError } from "commander";
import { parseWords } from "../api/args.js";
import { controlCall } from "../api/client.js";
import {
  argsUsage,
  commandWords,
  GROUPS,
  VERBS,
  type VerbName,
  type VerbSpec,
} from "../api/verbs.js";
import { formatStats } from "../dataplane/stats.js";
import { expandAbbreviations } from "./abbrev.js";
import { formatObject } from "./format.js";
import { VERSION } from "./version.js";

function socketPath(opts: { socket?: string; name?: string }): string {
  return opts.socket ?? `/run/vxtun/${opts.name ?? "vxtun"}.sock`;
}

/** How a verb's result is printed when --json is not asked for (default: JSON). */
const FORMATS: Partial<Record<VerbName, (result: never) => string>> = {
  stats: formatStats,
  info: formatObject,
  agent: formatObject,
};

function print(name: VerbName, result: unknown, json: boolean): void {
  if (result === undefined) return;
  const format = FORMATS[name] as ((r: unknown) => string) | undefined;
  if (typeof result === "string") console.log(result);
  else if (format && !json) console.log(format(result));
  else console.log(JSON.stringify(result, null, 2));
}

/** One command per control verb; table verbs grouped under `fdb`, `neigh`, `route`, `peer`. */
function verbCommands(program: Command): void {
  for (const name of Object.keys(VERBS) as VerbName[]) {
    const spec: VerbSpec = VERBS[name];
    const words = commandWords(name);
    let parent = program;
    for (const word of words.slice(0, -1)) {
      parent =
        parent.commands.find((c) => c.name() === word) ??
        parent
          .command(word)
          .description(GROUPS[word] ?? "")
          // List `add MAC dst IP`, not `add [words...]`.
          .configureHelp({ subcommandTerm: (c) => `${c.name()} ${c.usage()}` });
    }
    const takesWords = spec.positional.length > 0 || Object.keys(spec.keywords).length > 0;
    const cmd = parent
      .command(words[words.length - 1])
      .description(spec.summary)
      .usage(argsUsage(name));
    // Optional even when the verb needs words: parseWords names what is missing.
    if (takesWords) cmd.argument("[words...]");
    if (spec.json) cmd.option("-j, --json", "JSON output");
    if (name === "stats") {
      cmd
        .option("-w, --watch", "print rates per second every interval until interrupted")
        .option("-i, --interval <seconds>", "seconds between --watch frames", "1")
        .option("-c, --count <frames>", "stop --watch after this many frames");
    }
    cmd.action(async (...params: unknown[]) => {
      const c = params[params.length - 1] as Command;
      const o = c.opts() as { json?: boolean; watch?: boolean; interval?: string; count?: string };
      const json = !!o.json;
      const socket = socketPath(c.optsWithGlobals());
      if (o.watch) {
        const { parseCount, parseInterval, watchStats } = await import("./status.js");
        const count = o.count === undefined ? undefined : parseCount(o.count);
        await watchStats(socket, { intervalS: parseInterval(o.interval ?? "1"), json, count });
        return;
      }
      const args = parseWords(name, c.args);
      const result = await controlCall(socket, name, json ? { ...args, json } : args);
      print(name, result, json);
    });
  }
}

export function buildProgram(): Command {
  const program = new Command("vxtun")
    .description("userspace VXLAN and IP-in-IP dataplane")
    .version(VERSION, "-V, --version", "print the version")
    .option("--name <instance>", "instance name (default socket /run/vxtun/<name>.sock)", "vxtun")
    .option("--socket <path>", "control socket of the instance")
    .showHelpAfterError("(run 'vxtun help' for usage)")
    .exitOverride();

  program
    .command("run")
    .description("run the dataplane in the foreground")
    .requiredOption("-c, --config <file>", "YAML config file")
    .option("--log-level <level>", "trace|debug|info|warn|error", "info")
    .action(async (o: { config: string; logLevel: string }) => {
      const { runDataplane } = await import("./foreground.js");
      await runDataplane(o.config, o.logLevel);
    });

  program
    .command("install-cni")
    .description("install the vxtun CNI plugin and write 10-vxtun.conflist")
    .option("--bin-dir <dir>", "CNI plugin directory", "/opt/cni/bin")
    .option("--conf-dir <dir>", "CNI configuration directory", "/etc/cni/net.d")
    .option(
      "--state-file <file>",
      "node state the agent writes (default /run/vxtun/<name>/subnet.env)",
    )
    .option("--agent-socket <path>", "the agent's CNI socket (default /run/vxtun/<name>/cni.sock)")
    .option("--shim <file>", "the built shim (default: dist/cni/vxtun-cni)")
    .action(
      async (
        o: {
          binDir: string;
          confDir: string;
          stateFile?: string;
          agentSocket?: string;
          shim?: string;
        },
        c: Command,
      ) => {
        // The same per-instance defaults as `vxtun agent` (global --name, default "vxtun").
        const name = (c.optsWithGlobals() as { name?: string }).name ?? "vxtun";
        const { installCni } = await import("../cni/install.js");
        const r = installCni({
          ...o,
          stateFile: o.stateFile ?? `/run/vxtun/${name}/subnet.env`,
          agentSocket: o.agentSocket ?? `/run/vxtun/${name}/cni.sock`,
        });
        console.log(`installed ${r.plugin} and ${r.conflist}`);
      },
    );

  program
    .command("agent")
    .description("run the node agent: subnet lease, peer discovery, dataplane and CNI server")
    // Not requiredOption: commander would ask it of `vxtun agent status` too.
    .option("-c, --config <file>", "YAML config file (the dataplane's, plus network/store)")
    .option("--log-level <level>", "trace|debug|info|warn|error", "info")
    .action(async (o: { config?: string; logLevel: string }, c: Command) => {
      if (!o.config) c.error("error: required option '-c, --config <file>' not specified");
      const { runAgent } = await import("./foreground.js");
      await runAgent(o.config, o.logLevel);
    });

  const lab = program
    .command("lab")
    .description("a multi-node overlay in network namespaces on this machine (root)");
  /** A `vxtun lab` verb: the --lab option, and its handler from src/lab/commands.ts. */
  const labVerb = (
    usage: string,
    description: string,
    run: (m: typeof import("../lab/commands.js"), ...params: unknown[]) => void | Promise<void>,
  ) =>
    lab
      .command(usage)
      .description(description)
      // Not --name: that is the global option naming a dataplane instance.
      .option("--lab <name>", "lab name (several labs may run side by side)", "lab")
      .action(async (...params: unknown[]) => run(await import("../lab/commands.js"), ...params));
  type LabOpts = { lab: string };
  labVerb(
    "up",
    "build nodes on an underlay switch, an agent per node, pods through the CNI plugin",
    (m, o) => m.labUpCommand(o as Parameters<typeof m.labUpCommand>[0]),
  )
    .option("--nodes <n>", "number of nodes", "2")
    .option("--pods <m>", "pods per node", "2")
    .option("--mode <mode>", "vxlan | vxlan-l2 | ipip", "vxlan")
    .option("--stack <stack>", "pod addresses: ipv4 | ipv6 | dual", "ipv4")
    .option("--underlay <family>", "underlay: ipv4 | ipv6 (VXLAN over IPv6)", "ipv4")
    .option("--store <store>", "file (embedded) | etcd", "file");
  labVerb("status", "nodes, agents and pods of a running lab", (m, o) =>
    m.labStatusCommand(o as LabOpts),
  );
  labVerb("ping", "all-pairs ping matrix between the lab's pods", (m, o) =>
    m.labPingCommand(o as LabOpts),
  );
  labVerb(
    "exec <pod> [command...]",
    "run a command inside a pod's network namespace: vxtun lab exec n1-p1 -- ip addr",
    (m, pod, command, o) => m.labExecCommand(o as LabOpts, pod as string, command as string[]),
  );
  labVerb(
    "soak",
    "build a lab (named soak unless --lab) and inject seeded random faults while pods ping; report outages, leaks and leftovers",
    (m, o) => m.labSoakCommand(o as Parameters<typeof m.labSoakCommand>[0]),
  )
    .option("--minutes <n>", "length of the fault phase", "2")
    .option("--seed <s>", "schedule seed (default: random, printed in the report)")
    .option("--store <store>", "file (directory made unwritable) | etcd (stopped)", "file")
    .option("--out <dir>", "where to write soak.json, soak.md and soak.png", "vxtun-results")
    .option("--keep", "leave the lab up afterwards")
    .option("--from <json>", "run nothing: redraw soak.md and soak.png beside a saved soak.json");
  labVerb("down", "stop the lab's processes and remove its namespaces", (m, o) =>
    m.labDownCommand(o as Parameters<typeof m.labDownCommand>[0]),
  ).option("--all", "remove every vxtun lab and every vxt-* namespace (leftovers of crashed runs)");

  program
    .command("bench")
    .description(
      "iperf3/ping through bare underlay, kernel vxlan and each vxtun mode, side by side (root)",
    )
    .option("--quick", "one short run per path, TCP and ping only")
    .option("--reps <n>", "repetitions per path (medians are reported)", "3")
    .option("--seconds <s>", "seconds per iperf3 run", "5")
    .option(
      "--paths <list>",
      "comma-separated subset of: underlay,kernel-vxlan,vxtun-vxlan,vxtun-vxlan-nooffload,vxtun-vxlan-l2,vxtun-ipip",
    )
    .option("--out <dir>", "where to write JSON, Markdown and the chart", "vxtun-results")
    .option("--from <json>", "run nothing: redraw the table and chart beside a saved bench.json")
    .action(
      async (o: {
        quick?: boolean;
        reps: string;
        seconds: string;
        paths?: string;
        out: string;
        from?: string;
      }) => {
        const { runBenchCommand } = await import("../bench/commands.js");
        await runBenchCommand(o);
      },
    );

  program
    .command("mtu-sweep")
    .description(
      "probe inner packet sizes across the tunnel MTU, DF on and off, per path and underlay MTU (root)",
    )
    .option("--quick", "one path, one underlay MTU, sizes around the boundary")
    .option(
      "--paths <list>",
      "comma-separated subset of: kernel-vxlan,vxtun-vxlan,vxtun-vxlan-outer,vxtun-ipip",
    )
    .option("--mtus <list>", "underlay MTUs", "1500,1400,9000")
    .option("--out <dir>", "where to write JSON, Markdown and the chart", "vxtun-results")
    .option(
      "--from <json>",
      "run nothing: redraw the table and chart beside a saved mtu-sweep.json",
    )
    .action(
      async (o: { quick?: boolean; paths?: string; mtus: string; out: string; from?: string }) => {
        const { runSweepCommand } = await import("../bench/commands.js");
        await runSweepCommand(o);
      },
    );

  program
    .command("status")
    .description("the agent and the dataplane: subnet, lease, store, peers, device, rates")
    .option("-j, --json", "JSON output")
    .option("-i, --interval <seconds>", "seconds between the two samples the rates come from", "1")
    .action(async (o: { json?: boolean; interval: string }, c: Command) => {
      const { collectStatus, formatStatus, parseInterval } = await import("./status.js");
      const s = await collectStatus(socketPath(c.optsWithGlobals()), parseInterval(o.interval));
      console.log(o.json ? JSON.stringify(s, null, 2) : formatStatus(s));
    });

  verbCommands(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(expandAbbreviations(program, argv));
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander already printed its message (help, usage errors).
      process.exitCode = e.exitCode;
      return;
    }
    const msg = e instanceof Error ? e.message : String(e);
    console.error(`vxtun: ${msg}`);
    process.exitCode = 1;
  }
}

// Run directly (tsx src/cli/main.ts ...) as well as through bin/vxtun.js.
if (import.meta.url === `file://${process.argv[1]}`) void main(process.argv);
