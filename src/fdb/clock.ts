// Tables never read the time on their own in the per-packet path: the dataplane reads the
// clock once per batch and passes `now`. The injected clock serves control calls and lets
// tests age entries deterministically.

/** Milliseconds from an arbitrary origin; must not go backwards. */
export type Clock = () => number;

/** Monotonic: wall-clock steps (NTP, suspend) must not age out a whole table at once. */
export const monotonicClock: Clock = () => performance.now();

/** Whole seconds between `then` and `now`, as iproute2 prints entry ages. */
export function ageSeconds(now: number, then: number): number {
  return Math.max(0, Math.floor((now - then) / 1000));
}
