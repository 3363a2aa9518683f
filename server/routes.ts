import type { ConnectRouter } from "@connectrpc/connect";
import type { Logger } from "pino";
import { ChatService } from "../gen/chat/v1/chat_pb.js";
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import * as reflectionV1 from "../gen/grpc/reflection/v1/reflection_pb.js";
import * as reflectionV1alpha from "../gen/grpc/reflection/v1alpha/reflection_pb.js";
import type { ChatHub } from "./core/chat-hub.js";
import { createAuthInterceptor } from "./auth-interceptor.js";
import { createChatErrorInterceptor } from "./chat-error-interceptor.js";
import { createChatService, defaultChatServiceOptions, type ChatServiceOptions } from "./chat-service.js";
import { createHealthService } from "./health-service.js";
import type { HealthStatus } from "./health-status.js";
import { createReflectionIndex, registerReflection } from "./reflection-service.js";
import { createRpcLogInterceptor } from "./rpc-log-interceptor.js";

/** What the routes are built on. */
export interface RoutesDeps {
  hub: ChatHub;
  health: HealthStatus;
  logger: Logger;
  chatServiceOptions?: ChatServiceOptions;
}

/**
 * Creates the function that registers every service this server offers:
 * chat.v1.ChatService behind its interceptors, grpc.health.v1.Health, and
 * gRPC server reflection. The real server and the in-memory test transport
 * both take their routes from here.
 */
export function createRoutes({ hub, health, logger, chatServiceOptions }: RoutesDeps): (router: ConnectRouter) => void {
  const reflectionIndex = createReflectionIndex([
    ChatService,
    Health,
    reflectionV1.ServerReflection,
    reflectionV1alpha.ServerReflection,
  ]);
  return (router) => {
    router.service(ChatService, createChatService(hub, logger, chatServiceOptions ?? defaultChatServiceOptions), {
      // The first interceptor is the outermost: the log sees the final status.
      interceptors: [
        createRpcLogInterceptor(logger),
        createChatErrorInterceptor(),
        createAuthInterceptor((username) => hub.isOnline(username), [ChatService.method.connect]),
      ],
    });
    router.service(Health, createHealthService(health));
    registerReflection(router, reflectionIndex);
  };
}
