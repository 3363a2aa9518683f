import type { DescService } from "@bufbuild/protobuf";
import { createServiceImplSpec, type ServiceImpl, type ServiceImplSpec } from "@connectrpc/connect";

/**
 * Pairs a service with its implementation, type-checked against the service:
 * Connect's own createServiceImplSpec accepts any implementation.
 */
export function serviceSpec<S extends DescService>(service: S, impl: ServiceImpl<S>): ServiceImplSpec {
  return createServiceImplSpec(service, impl as Partial<ServiceImpl<DescService>>);
}
