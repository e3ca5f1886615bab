export interface BackoffOptions {
  baseMs: number;
  capMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, capMs: 15_000 };

/** Upper bound of the delay before retry number `attempt` (0-based): min(cap, base * 2^attempt). */
export function backoffCeiling(attempt: number, opts: BackoffOptions = DEFAULT_BACKOFF): number {
  const exp = Math.min(attempt, 30); // avoid overflow to Infinity
  return Math.min(opts.capMs, opts.baseMs * 2 ** exp);
}

/**
 * "Full jitter" (AWS architecture blog): a uniform delay in [0, ceiling).
 * `random` must return a number in [0, 1).
 */
export function fullJitterDelay(
  attempt: number,
  random: () => number = Math.random,
  opts: BackoffOptions = DEFAULT_BACKOFF,
): number {
  const r = Math.min(Math.max(random(), 0), 0.999999);
  return Math.floor(r * backoffCeiling(attempt, opts));
}
