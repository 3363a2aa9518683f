import { HealthCheckResponse_ServingStatus as ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";

export { ServingStatus };

/**
 * The serving status of each service the server reports on through
 * grpc.health.v1. The empty name stands for the server as a whole.
 */
export interface HealthStatus {
  /** Returns the status of a known service, or undefined for an unknown one. */
  get(service: string): ServingStatus | undefined;
  /** Sets the status of every known service at once. */
  setAll(status: ServingStatus): void;
  /**
   * Calls the listener after every change, until the returned function is
   * called.
   */
  subscribe(listener: () => void): () => void;
}

/**
 * Creates a HealthStatus that knows the given services, plus the empty name
 * for the whole server, all of them SERVING.
 */
export function createHealthStatus(services: readonly string[]): HealthStatus {
  const statuses = new Map<string, ServingStatus>([["", ServingStatus.SERVING]]);
  for (const service of services) {
    statuses.set(service, ServingStatus.SERVING);
  }
  const listeners = new Set<() => void>();
  return {
    get(service) {
      return statuses.get(service);
    },
    setAll(status) {
      let changed = false;
      for (const [service, current] of statuses) {
        if (current !== status) {
          statuses.set(service, status);
          changed = true;
        }
      }
      if (changed) {
        for (const listener of [...listeners]) {
          listener();
        }
      }
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
