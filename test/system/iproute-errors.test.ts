// iproute2 failures get their kind in one place (ipErrorKind): recorded outputs of
// iproute2 6.1 and nsenter, with their exit codes. The live cases, provoked with the real
// tools in a namespace, are in iproute-errors.root.test.ts.
import t from "tap";
import { type IpErrorKind, ipErrorKind } from "../../src/system/iproute.js";

t.test("recorded outputs (iproute2 6.1, Linux 6.x) and exit codes", async (t) => {
  const cases: [number, string, IpErrorKind][] = [
    [2, "RTNETLINK answers: File exists\n", "exists"],
    [1, "RTNETLINK answers: File exists\nCommand failed -:1\n", "exists"],
    [2, "Error: ipv4: Address already assigned.\n", "exists"],
    [1, 'Cannot find device "nope0"\n', "not-found"],
    [1, 'Device "nope0" does not exist.\n', "not-found"],
    [255, 'Error: argument "nobr" is wrong: Device does not exist\n\n', "not-found"],
    [2, "Error: ipv4: Address not found.\n", "not-found"],
    [2, "RTNETLINK answers: No such process\n", "not-found"],
    [2, "RTNETLINK answers: No such file or directory\n", "not-found"],
    [1, "nsenter: cannot open /proc/999999/ns/net: No such file or directory\n", "not-found"],
    [255, 'Cannot open network namespace "vxt-x": No such file or directory\n', "not-found"],
    [2, "RTNETLINK answers: Operation not permitted\n", "permission"],
    [255, 'setting the network namespace "x" failed: Operation not permitted\n', "permission"],
    [255, "RTNETLINK answers: Operation not supported\n", "other"],
    [255, 'Error: argument "/x" is wrong: Invalid "netns" value\n\n', "other"],
    // Never started: whatever the text, it says nothing about the object.
    [127, "spawn ip ENOENT\nNo such file or directory\n", "other"],
  ];
  for (const [code, stderr, kind] of cases) {
    t.equal(ipErrorKind(code, stderr), kind, `${kind}: ${stderr.trim().split("\n")[0]}`);
  }
});
