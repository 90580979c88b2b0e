// The smallest logger the plugin needs; pino's Logger satisfies it, so the agent can
// pass its own. The slow path logs to stderr (libcni leaves stderr for logs).
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

/** One JSON line per entry on stderr, at warn and above unless VXTUN_CNI_DEBUG is set. */
export function stderrLogger(debug = false): Logger {
  const line = (level: string) => (obj: object, msg?: string) => {
    process.stderr.write(`${JSON.stringify({ level, time: Date.now(), msg, ...obj })}\n`);
  };
  return {
    debug: debug ? line("debug") : () => {},
    info: debug ? line("info") : () => {},
    warn: line("warn"),
    error: line("error"),
  };
}
