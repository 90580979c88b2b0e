// `vxtun run`: load the config, start the dataplane, stop cleanly on SIGINT/SIGTERM
// (devices and sockets closed; a persistent device is kept if the config says so).
import { pino } from "pino";
import { loadConfig } from "./config.js";
import { Dataplane } from "./dataplane.js";

export async function runFromConfig(file: string, level: string): Promise<void> {
  const cfg = loadConfig(file);
  const log = pino(
    { level, base: { name: cfg.name } },
    cfg.paths.log ? pino.destination({ dest: cfg.paths.log, mkdir: true }) : pino.destination(2),
  );
  const dp = await Dataplane.start(cfg, log);
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      log.info({ signal: sig }, "stopping");
      void dp.stop().then(resolve);
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
}
