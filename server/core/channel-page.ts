import type { ChannelRef } from "./session-event.js";

/** Which part of the sorted channel list to return. */
export interface ChannelPage {
  /** Only names after this one, in code-unit order. */
  after?: string;
  /** At most this many channels. */
  limit: number;
}

/** Sorts names and returns the page of them that the request asks for. */
export function pageOfNames(names: Iterable<string>, page: ChannelPage | undefined): string[] {
  const sorted = sortChannels(Array.from(names, (name) => ({ name })));
  return pageOf(sorted, page).map((entry) => entry.name);
}

/**
 * Sorts channels by name, in place. Names are ASCII and compared exactly, so
 * code-unit order is the order.
 */
export function sortChannels<T extends Pick<ChannelRef, "name">>(channels: T[]): T[] {
  return channels.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Returns the page of a sorted list that the request asks for: all of it when none is given. */
export function pageOf<T extends Pick<ChannelRef, "name">>(sorted: readonly T[], page: ChannelPage | undefined): T[] {
  if (page === undefined) return [...sorted];
  let start = 0;
  if (page.after !== undefined) {
    // The first name after page.after, by binary search.
    let high = sorted.length;
    while (start < high) {
      const mid = (start + high) >>> 1;
      if (sorted[mid]!.name <= page.after) start = mid + 1;
      else high = mid;
    }
  }
  return sorted.slice(start, start + page.limit);
}
