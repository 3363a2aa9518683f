import type { ChannelRef, PresenceEvent } from "./session-event.js";

/** Collects presence changes and publishes them, coalesced, once per interval. */
export interface PresenceFeed {
  /** A channel came (present) or went (not present). O(1): nothing is sent now. */
  changed(channel: ChannelRef, present: boolean): void;
  /** Publishes what is pending at once; for shutdown and tests. */
  flush(): void;
  /** Drops what is pending and stops the timer. */
  close(): void;
}

/** Settings of {@link createPresenceFeed}. */
export interface PresenceFeedOptions {
  /** How long changes are collected before they are published together. */
  intervalMs: number;
  /** The most changes one event carries; more are split over several events. Default 1000. */
  maxChangesPerEvent?: number;
  /** Hands one event to every watcher. */
  publish(event: PresenceEvent): void;
}

interface Pending {
  readonly channel: ChannelRef;
  /** Whether the channel is present after the interval's last change. */
  present: boolean;
}

/**
 * Creates the presence feed. Presence is O(watchers) per change, so a burst
 * of changes (a thousand users connecting at once) would cost watchers ×
 * changes. Instead, changes are collected for intervalMs and published as
 * one event per interval, shared by every watcher: a change costs one map
 * entry, and an interval costs one queue push per watcher, however many
 * changes it carries. A channel that changed several times within one
 * interval is published once, in its final state: even one that came and
 * went, since a client may have listed it in between. What waits is one
 * entry per channel that changed within the interval.
 */
export function createPresenceFeed(options: PresenceFeedOptions): PresenceFeed {
  const maxChanges = options.maxChangesPerEvent ?? 1000;
  let pending = new Map<string, Pending>();
  let timer: NodeJS.Timeout | undefined;

  const flush = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    const changes = pending;
    pending = new Map();
    let added: ChannelRef[] = [];
    let removed: ChannelRef[] = [];
    let textBytes = 0;
    const publish = () => {
      options.publish({ kind: "channels-changed", added, removed, textBytes, holders: 0 });
      added = [];
      removed = [];
      textBytes = 0;
    };
    for (const change of changes.values()) {
      (change.present ? added : removed).push(change.channel);
      // A name and its framing on the wire.
      textBytes += Buffer.byteLength(change.channel.name) + 8;
      if (added.length + removed.length >= maxChanges) publish();
    }
    if (added.length + removed.length > 0) publish();
  };

  return {
    changed(channel, present) {
      const key = `${channel.type}:${channel.name}`;
      const known = pending.get(key);
      if (known !== undefined) known.present = present;
      else pending.set(key, { channel, present });
      if (timer === undefined) {
        timer = setTimeout(flush, options.intervalMs);
        timer.unref();
      }
    },
    flush,
    close() {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      pending = new Map();
    },
  };
}
