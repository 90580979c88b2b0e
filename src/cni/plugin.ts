// The whole CNI plugin as a library: handleCni(env, stdin) -> { stdout, code }. The
// Node executable (main.ts) and the agent's Unix-socket server (server.ts) both call it,
// so the shim's fast path and the slow path behave identically.
import { cmdAdd } from "./add.js";
import { cmdCheck } from "./check.js";
import { DEFAULT_STATE_FILE, parseNetConf, peekVersion } from "./config.js";
import { cmdDel, cmdGc } from "./del.js";
import { parseEnv } from "./env.js";
import { CniCode, CniError, errorJson } from "./errors.js";
import { type Logger, silentLogger } from "./log.js";
import { cmdStatus } from "./status.js";
import { encodeResult, LATEST, requireAtLeast, SUPPORTED_VERSIONS } from "./version.js";

export interface CniReply {
  stdout: string;
  code: number;
}

export interface HandleOptions {
  /** State file when the configuration names none. */
  stateFile?: string;
  log?: Logger;
}

export async function handleCni(
  env: Record<string, string | undefined>,
  stdin: string,
  opts: HandleOptions = {},
): Promise<CniReply> {
  const log = opts.log ?? silentLogger;
  try {
    const e = parseEnv(env);
    if (e.command === "VERSION") {
      return {
        stdout: JSON.stringify({ cniVersion: LATEST, supportedVersions: SUPPORTED_VERSIONS }),
        code: 0,
      };
    }
    const conf = parseNetConf(stdin, opts.stateFile ?? DEFAULT_STATE_FILE);
    switch (e.command) {
      case "ADD": {
        const r = await cmdAdd(e, conf, log);
        log.info({ containerId: e.containerId, ips: r.ips }, "ADD");
        return { stdout: JSON.stringify(encodeResult(r, conf.cniVersion)), code: 0 };
      }
      case "DEL":
        await cmdDel(e, conf, log);
        return { stdout: "", code: 0 };
      case "CHECK":
        requireAtLeast(conf.cniVersion, "0.4.0", "CHECK");
        await cmdCheck(e, conf);
        return { stdout: "", code: 0 };
      case "GC":
        requireAtLeast(conf.cniVersion, "1.1.0", "GC");
        await cmdGc(e, conf, log);
        return { stdout: "", code: 0 };
      case "STATUS":
        requireAtLeast(conf.cniVersion, "1.1.0", "STATUS");
        await cmdStatus(conf);
        return { stdout: "", code: 0 };
    }
  } catch (err) {
    const ce =
      err instanceof CniError
        ? err
        : new CniError(CniCode.dataplane, "internal error", (err as Error)?.stack ?? String(err));
    if (!(err instanceof CniError)) log.error({ err: ce.details }, "unexpected failure");
    const v = peekVersion(stdin);
    const version = v && (SUPPORTED_VERSIONS as readonly string[]).includes(v) ? v : LATEST;
    return { stdout: errorJson(version, ce), code: 1 };
  }
}
