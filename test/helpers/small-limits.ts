/**
 * The small limits the backend tests run with, in memory and on Redis: a
 * queue a test can fill, and room enough for everything else. A test's own
 * options go over them.
 */
export const smallLimits = {
  queueLimit: 100,
  queueLimitBytes: 1 << 20,
  maxQueuedBytes: 1 << 28,
  maxGroupsPerUser: 10,
  maxGroups: 1000,
} as const;
