// `vxtun run` and `vxtun agent`: start a dataplane (with its control socket) or a node
// agent, log as the config says, and stop cleanly on SIGINT/SIGTERM (devices and
// sockets closed; a persistent device is kept if the config says so). An agent that
// loses its lease stops by itself, with a non-zero exit so a supervisor restarts it.
import { type Logger, pino } from "pino";

interface Running {
  stop(): Promise<void>;
  /** Resolves when it stops by itself. */
  done?: Promise<void>;
}

async function foreground(
  cfg: { name: string; paths: { log?: string } },
  level: string,
  start: (log: Logger) => Promise<Running>,
): Promise<void> {
  const log = pino(
    { level, base: { name: cfg.name } },
    cfg.paths.log ? pino.destination({ dest: cfg.paths.log, mkdir: true }) : pino.destination(2),
  );
  const it = await start(log);
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      log.info({ signal: sig }, "stopping");
      void it.stop().then(resolve);
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
    void it.done?.then(resolve);
  });
}

export async function runDataplane(file: string, level: string): Promise<void> {
  const { loadConfig, instancePaths } = await import("../dataplane/config.js");
  const { Dataplane } = await import("../dataplane/dataplane.js");
  const { dataplaneHandlers } = await import("../api/handlers.js");
  const { ControlServer } = await import("../api/server.js");
  const cfg = await loadConfig(file);
  await foreground(cfg, level, async (log) => {
    const dp = await Dataplane.start(cfg, log);
    dp.sweepKeptRoutes();
    const control = new ControlServer(instancePaths(cfg).socket, dataplaneHandlers(dp));
    await control.listen().catch(async (e) => {
      await dp.stop();
      throw e;
    });
    return {
      stop: async () => {
        await control.close();
        await dp.stop();
      },
    };
  });
}

export async function runAgent(file: string, level: string): Promise<void> {
  const { loadAgentConfig } = await import("../control/config.js");
  const { Agent } = await import("../control/agent.js");
  const cfg = await loadAgentConfig(file);
  await foreground(cfg, level, (log) => Agent.start(cfg, log));
}
