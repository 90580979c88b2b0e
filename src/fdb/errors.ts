// Errors for bad control input (CLI, control plane). Packets never reach these paths:
// the per-packet API reports outcomes with return codes instead of throwing.

/** errno-like code, so a CLI can map it to an exit status without parsing text. */
export type TableErrorCode = "EINVAL" | "EEXIST" | "ENOENT" | "ENOSPC";

/** A one-line message saying what is wrong and how to fix it. */
export class TableError extends Error {
  override readonly name = "TableError";
  readonly code: TableErrorCode;

  constructor(code: TableErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}
