// Run code with the main thread inside a named network namespace. Sockets and TUN/TAP
// devices created by `fn` stay in that namespace for their whole life, which is how one
// process plays several "hosts" in tests and labs.
import { closeSync, constants, openSync } from "node:fs";
import { C, native } from "../io/native.js";

const NS_NAME = /^[A-Za-z0-9_.-]+$/;

/**
 * setns into /run/netns/<nsName>, run `fn` synchronously, always setns back.
 * `fn` must not await: everything after the first await runs outside the namespace.
 */
export function withNetns<T>(nsName: string, fn: () => T): T {
  if (!NS_NAME.test(nsName) || nsName === "." || nsName === "..") {
    throw new Error(`invalid network namespace name ${JSON.stringify(nsName)}`);
  }
  // thread-self, not self: setns acts on the calling thread, and that is what we restore.
  // (libuv opens every fd with O_CLOEXEC, so children never inherit these.)
  const orig = openSync("/proc/thread-self/ns/net", constants.O_RDONLY);
  let target: number;
  try {
    target = openSync(`/run/netns/${nsName}`, constants.O_RDONLY);
  } catch (e) {
    closeSync(orig);
    throw new Error(`network namespace ${nsName}: ${(e as Error).message}`);
  }
  try {
    native.setns(target, C.CLONE_NEWNET);
  } catch (e) {
    closeSync(target);
    closeSync(orig);
    (e as Error).message = `enter network namespace ${nsName}: ${(e as Error).message}`;
    throw e;
  }
  try {
    return fn();
  } finally {
    try {
      native.setns(orig, C.CLONE_NEWNET);
    } finally {
      closeSync(target);
      closeSync(orig);
    }
  }
}
