/** A reproducible source of random choices: the same seed gives the same run of numbers. */
export interface SeededRandom {
  /** A number in [0, 1). */
  next(): number;
  /** An integer in [min, max]. */
  int(min: number, max: number): number;
  /** One element of a non-empty list. */
  pick<T>(items: readonly T[]): T;
  /** A copy of the list in a random order. */
  shuffle<T>(items: readonly T[]): T[];
  /** An independent generator for one consumer, so that one consumer's draws do not shift another's. */
  fork(label: string): SeededRandom;
}

/**
 * Creates a generator from a 32-bit seed with mulberry32: a dozen lines, no
 * dependency, and good enough to choose faults and operations (nothing here
 * needs cryptographic or statistical strength). A library such as pure-rand
 * would add a package for what this file does.
 */
export function createSeededRandom(seed: number): SeededRandom {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (min: number, max: number) => min + Math.floor(next() * (max - min + 1));
  return {
    next,
    int,
    pick: <T>(items: readonly T[]): T => items[int(0, items.length - 1)] as T, // The index is in range: the list is not empty.
    shuffle<T>(items: readonly T[]): T[] {
      const copy = [...items];
      for (let i = copy.length - 1; i > 0; i--) {
        const j = int(0, i);
        [copy[i], copy[j]] = [copy[j] as T, copy[i] as T]; // Both indices are in range.
      }
      return copy;
    },
    fork(label: string) {
      let hash = seed >>> 0;
      for (const char of label) hash = Math.imul(hash ^ char.charCodeAt(0), 0x01000193) >>> 0;
      return createSeededRandom(hash);
    },
  };
}
