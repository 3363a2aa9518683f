import type { ConnectRouter, Interceptor, ServiceImplSpec } from "@connectrpc/connect";
import { serviceSpec } from "../standard/service-spec.js";
import type { Logger } from "pino";
import { ChatService } from "../../gen/chat/v1/chat_pb.js";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import * as reflectionV1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as reflectionV1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import type { ChatBackend } from "../core/chat-backend.js";
import { createAuthInterceptor } from "./auth-interceptor.js";
import { createMetricsInterceptor, type ChatMetrics } from "../ops/chat-metrics.js";
import { createChatErrorInterceptor } from "./error-interceptor.js";
import { createChatService, defaultChatServiceOptions, type ChatServiceOptions } from "./chat-service.js";
import { createHealthService } from "../standard/health-service.js";
import type { HealthStatus } from "../standard/health-status.js";
import { createReflectionIndex, createReflectionServices } from "../standard/reflection-service.js";
import { createRpcLogInterceptor } from "./log-interceptor.js";

/** What the routes are built on. */
export interface RoutesDeps {
  hub: ChatBackend;
  health: HealthStatus;
  logger: Logger;
  chatServiceOptions?: ChatServiceOptions;
  /** Where the chat service counts what it does; nothing is counted without it. */
  metrics?: ChatMetrics;
}

/**
 * A service implementation with the interceptors that wrap its calls: what
 * the router registers, and what the server's lean unary path calls directly.
 */
export interface ServiceRegistration {
  spec: ServiceImplSpec;
  interceptors: Interceptor[];
}

/**
 * Creates every service this server offers: chat.v1.ChatService behind its
 * interceptors, grpc.health.v1.Health, and gRPC server reflection.
 */
export function createServices({ hub, health, logger, chatServiceOptions, metrics }: RoutesDeps): ServiceRegistration[] {
  const reflectionIndex = createReflectionIndex([
    ChatService,
    Health,
    reflectionV1.ServerReflection,
    reflectionV1alpha.ServerReflection,
  ]);
  return [
    {
      spec: serviceSpec(ChatService, createChatService(hub, logger, chatServiceOptions ?? defaultChatServiceOptions, metrics)),
      // The first interceptor is the outermost: metrics and the log see the final status.
      interceptors: [
        ...(metrics ? [createMetricsInterceptor(metrics)] : []),
        createRpcLogInterceptor(logger),
        createChatErrorInterceptor(),
        createAuthInterceptor((username) => hub.isOnline(username), [ChatService.method.connect]),
      ],
    },
    { spec: serviceSpec(Health, createHealthService(health)), interceptors: [] },
    ...createReflectionServices(reflectionIndex).map((spec) => ({ spec, interceptors: [] })),
  ];
}

/**
 * Returns the function that registers the services with a Connect router.
 */
export function routesOf(services: readonly ServiceRegistration[]): (router: ConnectRouter) => void {
  return (router) => {
    for (const { spec, interceptors } of services) {
      for (const method of Object.values(spec.methods)) {
        router.rpc(method.method, method.impl as never, { interceptors });
      }
    }
  };
}

/**
 * Creates the function that registers every service with a Connect router.
 * The real server and the in-memory test transport both take their routes
 * from here.
 */
export function createRoutes(deps: RoutesDeps): (router: ConnectRouter) => void {
  return routesOf(createServices(deps));
}
