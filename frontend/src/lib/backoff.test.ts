import { backoffCeiling, DEFAULT_BACKOFF, fullJitterDelay } from './backoff';

describe('backoff', () => {
  it('ceiling doubles from the base and stops at the cap', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 20, 1000].map((a) => backoffCeiling(a))).toEqual([
      500, 1000, 2000, 4000, 8000, 15000, 15000, 15000, 15000,
    ]);
    expect(DEFAULT_BACKOFF).toEqual({ baseMs: 500, capMs: 15000 });
  });

  it('full jitter spans [0, ceiling) using the injected random', () => {
    expect(fullJitterDelay(3, () => 0)).toBe(0);
    expect(fullJitterDelay(3, () => 0.5)).toBe(2000);
    expect(fullJitterDelay(3, () => 0.999999)).toBe(3999);
    expect(fullJitterDelay(10, () => 0.999999)).toBe(14999);
    // out-of-range randoms are clamped, never exceed the ceiling
    expect(fullJitterDelay(0, () => 7)).toBeLessThan(500);
    expect(fullJitterDelay(0, () => -1)).toBe(0);
  });

  it('is uniformly spread (not fixed) with a real random source', () => {
    const seen = new Set<number>();
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < 200; i++) {
      const d = fullJitterDelay(4, rnd);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(8000);
      seen.add(Math.floor(d / 1000));
    }
    expect(seen.size).toBe(8); // every 1 s bucket of [0, 8 s) was hit
  });
});
