import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Cluster, Redis } from "ioredis";
import { BurstyRateLimiter, RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import { quote } from "../core/chat-error.js";
import { clientAddressKey, userKey } from "./context-keys.js";

/** Settings of {@link createRateLimitInterceptor}; a rate of 0 turns its limit off. */
export interface RateLimits {
  /** Messages one user may send per second, sustained. */
  sendRate: number;
  /** Messages one user may send at once above the rate, the allowance refilling over burst/rate seconds. */
  sendBurst: number;
  /** Connect attempts one address may make per second. */
  connectRate: number;
  /** The method whose calls are sends, and the one whose calls are Connect attempts. */
  sendMethod: DescMethod;
  connectMethod: DescMethod;
  /** In cluster mode, the Redis that shares each user's allowance between the nodes. */
  store?: Redis | Cluster;
}

/** One limiter: consumes a point of the key's allowance, or says how long to wait. */
type Limiter = (key: string) => Promise<number | undefined>;

/**
 * Creates the interceptor that holds each user to its send rate and each
 * address to its Connect rate, with rate-limiter-flexible: in memory, or in
 * Redis in cluster mode so that spreading calls over nodes does not multiply
 * the allowance (with an in-memory fallback while Redis is away). Over a
 * limit, a call fails with RESOURCE_EXHAUSTED saying when to retry.
 */
export function createRateLimitInterceptor(limits: RateLimits): Interceptor {
  const sends = limits.sendRate > 0 ? createLimiter("chat:send", limits.sendRate, limits.sendBurst, limits.store) : undefined;
  const connects = limits.connectRate > 0 ? createLimiter("chat:connect", limits.connectRate, 0, undefined) : undefined;
  return (next) => async (req) => {
    if (sends !== undefined && req.method === limits.sendMethod) {
      const user = req.contextValues.get(userKey) ?? "";
      const wait = await sends(user);
      if (wait !== undefined) {
        throw new ConnectError(
          `${quote(user)} is sending more than ${limits.sendRate} messages a second (bursts of ${limits.sendBurst} more allowed): ${retryIn(wait)}`,
          Code.ResourceExhausted,
        );
      }
    }
    if (connects !== undefined && req.method === limits.connectMethod) {
      const address = req.contextValues.get(clientAddressKey) ?? "";
      const wait = await connects(address);
      if (wait !== undefined) {
        throw new ConnectError(
          `too many Connect attempts from this address (at most ${limits.connectRate} a second): ${retryIn(wait)}`,
          Code.ResourceExhausted,
        );
      }
    }
    return next(req);
  };
}

/** How long to wait, for a RESOURCE_EXHAUSTED message: "retry in 0.35 s". */
export function retryIn(ms: number): string {
  return `retry in ${(Math.max(ms, 1) / 1000).toFixed(ms < 10_000 ? 2 : 0)} s`;
}

function createLimiter(prefix: string, rate: number, burst: number, store: Redis | Cluster | undefined): Limiter {
  const make = (keyPrefix: string, points: number, duration: number) => {
    const memory = new RateLimiterMemory({ keyPrefix, points, duration });
    // With Redis away the send fails anyway; the fallback keeps the limit meanwhile.
    return store === undefined ? memory : new RateLimiterRedis({ storeClient: store, keyPrefix, points, duration, insuranceLimiter: memory });
  };
  const steady = make(prefix, rate, 1);
  const limiter = burst > 0 ? new BurstyRateLimiter(steady, make(`${prefix}-burst`, burst, Math.max(1, Math.ceil(burst / rate)))) : steady;
  return async (key) => {
    try {
      await limiter.consume(key);
      return undefined;
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) return rejection.msBeforeNext;
      throw rejection;
    }
  };
}
