/** What {@link createChannelSubscriptions} subscribes through. */
export interface Subscriber {
  subscribe(channels: readonly string[]): Promise<void>;
  unsubscribe(channels: readonly string[]): Promise<void>;
}

/**
 * A node's shard-channel subscriptions, counted: a user's inbox while the
 * node holds its session, a group's room while it holds a member. The
 * first holder subscribes and waits for the store to confirm, later ones
 * wait for that same confirmation; the last to let go unsubscribes. The
 * subscribes and unsubscribes of one channel run one after the other, so
 * that a hold taken while the channel is being let go subscribes it again
 * once the unsubscribe is done.
 */
export interface ChannelSubscriptions {
  /** Takes a hold on a channel; resolves once it is subscribed. A failed subscribe leaves no hold. */
  acquire(channel: string): Promise<void>;
  /** Lets go of one hold; answers whether it was the last (the channel is being unsubscribed). */
  release(channel: string): boolean;
  /** Whether the channel has holders. */
  has(channel: string): boolean;
  /** Forgets every hold, as when the subscriptions were lost with their connection; unsubscribes what the store may still keep. */
  reset(): void;
}

/** Creates counted subscriptions over a subscriber. */
export function createChannelSubscriptions(subscriber: Subscriber): ChannelSubscriptions {
  return new ChannelSubscriptionsImpl(subscriber);
}

interface Hold {
  count: number;
  ready: Promise<void>;
}

class ChannelSubscriptionsImpl implements ChannelSubscriptions {
  private readonly holds = new Map<string, Hold>();
  // The last operation on each channel, for the next to wait for.
  private readonly tails = new Map<string, Promise<unknown>>();
  // Bumped by reset: an operation chained before it must not run after it.
  private generation = 0;

  constructor(private readonly subscriber: Subscriber) {}

  /**
   * Runs an operation on a channel after the ones before it. One chained
   * before a reset is dropped when its turn comes after it: an unsubscribe
   * waiting behind a subscribe that hung as the connection died would
   * otherwise undo the subscription that new holds made since.
   */
  private chain(channel: string, operation: () => Promise<void>): Promise<void> {
    const { generation } = this;
    const run = () => (generation === this.generation ? operation() : Promise.reject(new Error("the subscriptions were reset")));
    const done = (this.tails.get(channel) ?? Promise.resolve()).then(run, run);
    const tail = done.catch(() => undefined);
    this.tails.set(channel, tail);
    void tail.then(() => {
      if (this.tails.get(channel) === tail) this.tails.delete(channel);
    });
    return done;
  }

  acquire(channel: string): Promise<void> {
    const held = this.holds.get(channel);
    if (held !== undefined) {
      held.count++;
      return held.ready;
    }
    const hold: Hold = { count: 1, ready: this.chain(channel, () => this.subscriber.subscribe([channel])) };
    this.holds.set(channel, hold);
    hold.ready.catch(() => {
      if (this.holds.get(channel) === hold) this.holds.delete(channel);
    });
    return hold.ready;
  }

  release(channel: string): boolean {
    const hold = this.holds.get(channel);
    if (hold === undefined) return false;
    if (--hold.count > 0) return false;
    this.holds.delete(channel);
    // An unsubscribe that fails leaves a subscription whose messages nobody takes: harmless, and gone with the connection.
    this.chain(channel, () => this.subscriber.unsubscribe([channel])).catch(() => undefined);
    return true;
  }

  has(channel: string): boolean {
    return this.holds.has(channel);
  }

  reset(): void {
    this.generation++;
    const channels = [...this.holds.keys()];
    this.holds.clear();
    this.tails.clear();
    this.subscriber.unsubscribe(channels).catch(() => undefined);
  }
}
