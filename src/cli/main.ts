// `vxtun`: one CLI for the dataplane, its tables and counters. Table verbs speak
// iproute2's word order (`fdb add MAC dst IP`, `neigh add IP lladdr MAC`,
// `route add PREFIX via GW onlink`) so people who know `ip` and `bridge` need no manual.
import { Command, CommanderError } from "commander";
import { controlCall, UserError } from "../dataplane/control-socket.js";
import { formatStats } from "../dataplane/stats.js";
import { parseWords, type WordSpec } from "./words.js";

function socketPath(opts: { socket?: string; name?: string }): string {
  return opts.socket ?? `/run/vxtun/${opts.name ?? "vxtun"}.sock`;
}

/** Table sub-commands share one shape: show / add / del against the control socket. */
function tableCommand(
  program: Command,
  table: string,
  summary: string,
  specs: { add: WordSpec; del: WordSpec },
): void {
  const cmd = program.command(table).description(summary);
  cmd
    .command("show")
    .description(`print the ${table} table`)
    .option("--json", "JSON output")
    .action(async (o: { json?: boolean }, c: Command) => {
      const result = (await controlCall(socketPath(c.optsWithGlobals()), `${table}.show`, {
        json: !!o.json,
      })) as string | unknown[];
      console.log(typeof result === "string" ? result : JSON.stringify(result, null, 2));
    });
  for (const verb of ["add", "del"] as const) {
    cmd
      .command(`${verb} <words...>`)
      .description(`${verb} an entry: ${specs[verb].usage}`)
      .action(async (words: string[], _o: unknown, c: Command) => {
        const args = parseWords(words, specs[verb]);
        await controlCall(socketPath(c.optsWithGlobals()), `${table}.${verb}`, args);
      });
  }
}

export function buildProgram(): Command {
  const program = new Command("vxtun")
    .description("userspace VXLAN and IP-in-IP dataplane")
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
      const { runFromConfig } = await import("../dataplane/run.js");
      await runFromConfig(o.config, o.logLevel);
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
    .requiredOption("-c, --config <file>", "YAML config file (the dataplane's, plus network/store)")
    .option("--log-level <level>", "trace|debug|info|warn|error", "info")
    .action(async (o: { config: string; logLevel: string }) => {
      const { runAgentFromConfig } = await import("../control/run.js");
      await runAgentFromConfig(o.config, o.logLevel);
    });

  tableCommand(program, "fdb", "VXLAN forwarding database (like 'bridge fdb')", {
    add: { usage: "MAC dst IP", positional: ["mac"], keywords: { dst: "string" } },
    del: { usage: "MAC [dst IP]", positional: ["mac"], keywords: { dst: "string" } },
  });
  tableCommand(program, "neigh", "neighbour table (like 'ip neigh')", {
    add: { usage: "IP lladdr MAC", positional: ["ip"], keywords: { lladdr: "string" } },
    del: { usage: "IP", positional: ["ip"], keywords: {} },
  });
  tableCommand(program, "route", "overlay routes (like 'ip route')", {
    add: {
      usage: "PREFIX [via GW] [onlink] [mtu N]",
      positional: ["prefix"],
      keywords: { via: "string", mtu: "number", onlink: "flag", remote: "string" },
    },
    del: { usage: "PREFIX", positional: ["prefix"], keywords: {} },
  });
  tableCommand(program, "peer", "remote nodes: route + neighbour + FDB entry in one step", {
    add: {
      usage: "NODE-IP subnet PREFIX [vtep-mac MAC]",
      positional: ["address"],
      keywords: { subnet: "string", "vtep-mac": "string" },
    },
    del: { usage: "NODE-IP", positional: ["address"], keywords: {} },
  });

  const lab = program
    .command("lab")
    .description("a multi-node overlay in network namespaces on this machine (root)");
  // Not --name: that is the global option naming a dataplane instance.
  const labName = ["--lab <name>", "lab name (several labs may run side by side)", "lab"] as const;
  lab
    .command("up")
    .description(
      "build nodes on an underlay switch, an agent per node, pods through the CNI plugin",
    )
    .option("--nodes <n>", "number of nodes", "2")
    .option("--pods <m>", "pods per node", "2")
    .option("--mode <mode>", "vxlan | vxlan-l2 | ipip", "vxlan")
    .option("--store <store>", "file (embedded) | etcd", "file")
    .option(...labName)
    .action(
      async (o: { lab: string; nodes: string; pods: string; mode: string; store: string }) => {
        const { labUpCommand } = await import("../lab/commands.js");
        await labUpCommand(o);
      },
    );
  lab
    .command("status")
    .description("nodes, agents and pods of a running lab")
    .option(...labName)
    .action(async (o: { lab: string }) => {
      const { labStatusCommand } = await import("../lab/commands.js");
      await labStatusCommand(o);
    });
  lab
    .command("ping")
    .description("all-pairs ping matrix between the lab's pods")
    .option(...labName)
    .action(async (o: { lab: string }) => {
      const { labPingCommand } = await import("../lab/commands.js");
      await labPingCommand(o);
    });
  lab
    .command("exec <pod> [command...]")
    .description("run a command inside a pod's network namespace: vxtun lab exec n1-p1 -- ip addr")
    .option(...labName)
    .action(async (pod: string, command: string[], o: { lab: string }) => {
      const { labExecCommand } = await import("../lab/commands.js");
      labExecCommand(o, pod, command);
    });
  lab
    .command("down")
    .description("stop the lab's processes and remove its namespaces")
    .option(...labName)
    .option("--all", "remove every vxtun lab and every vxt-* namespace (leftovers of crashed runs)")
    .action(async (o: { lab: string; all?: boolean }) => {
      const { labDownCommand } = await import("../lab/commands.js");
      await labDownCommand(o);
    });

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
    .action(
      async (o: {
        quick?: boolean;
        reps: string;
        seconds: string;
        paths?: string;
        out: string;
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
    .action(async (o: { quick?: boolean; paths?: string; mtus: string; out: string }) => {
      const { runSweepCommand } = await import("../bench/commands.js");
      await runSweepCommand(o);
    });

  program
    .command("stats")
    .description("packet, byte and batch counters, and drops by reason")
    .option("--json", "JSON output")
    .action(async (o: { json?: boolean }, c: Command) => {
      const snap = (await controlCall(socketPath(c.optsWithGlobals()), "stats", {})) as Parameters<
        typeof formatStats
      >[0];
      console.log(o.json ? JSON.stringify(snap, null, 2) : formatStats(snap));
    });

  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander already printed its message (help, usage errors).
      process.exitCode = e.exitCode;
      return;
    }
    const msg = e instanceof UserError || e instanceof Error ? e.message : String(e);
    console.error(`vxtun: ${msg}`);
    process.exitCode = 1;
  }
}

// Run directly (tsx src/cli/main.ts ...) as well as through bin/vxtun.js.
if (import.meta.url === `file://${process.argv[1]}`) void main(process.argv);
