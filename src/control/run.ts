// `vxtun agent --config FILE`: run the node agent in the foreground until SIGINT/SIGTERM
// (or until it loses its lease, which exits non-zero so a supervisor restarts it).
import { pino } from "pino";
import { Agent } from "./agent.js";
import { loadAgentConfig } from "./config.js";

export async function runAgentFromConfig(file: string, level: string): Promise<void> {
  const cfg = loadAgentConfig(file);
  const log = pino(
    { level, base: { name: cfg.name } },
    cfg.paths.log ? pino.destination({ dest: cfg.paths.log, mkdir: true }) : pino.destination(2),
  );
  const agent = await Agent.start(cfg, log);
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      log.info({ signal: sig }, "stopping");
      void agent.stop().then(resolve);
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
    void agent.done.then(resolve);
  });
}
