// CNI errors: the spec's well-known codes and one error class that carries them to the
// point where the plugin prints the error JSON on stdout (libcni reads it there).

/** Well-known error codes of CNI spec 1.1.0 (0-99 reserved; 100+ are ours). */
export const CniCode = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  unknownContainer: 3,
  invalidEnv: 4,
  io: 5,
  decode: 6,
  invalidConfig: 7,
  tryAgainLater: 11,
  notAvailable: 50,
  limitedConnectivity: 51,
  /** vxtun: configuring links, addresses or routes failed. */
  dataplane: 100,
  /** vxtun: the IPAM plugin could not be run or answered nonsense. */
  ipam: 101,
} as const;

export class CniError extends Error {
  constructor(
    readonly code: number,
    msg: string,
    readonly details = "",
  ) {
    super(msg);
  }
}

/** The spec's error object (printed on stdout with a non-zero exit). */
export function errorJson(cniVersion: string, e: CniError): string {
  const out: Record<string, unknown> = { cniVersion, code: e.code, msg: e.message };
  if (e.details) out.details = e.details;
  return JSON.stringify(out);
}
