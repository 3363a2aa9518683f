import type { ConnectRouter } from "@connectrpc/connect";
import type { Logger } from "pino";
import { ChatService } from "../../gen/chat/v1/chat_pb.js";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import * as reflectionV1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as reflectionV1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import type { ChatBackend } from "../core/chat-backend.js";
import type { ChatMetrics } from "../ops/chat-metrics.js";
import { createHealthService } from "../standard/health-service.js";
import type { HealthStatus } from "../standard/health-status.js";
import { createReflectionIndex } from "../standard/reflection-index.js";
import { createReflectionServices } from "../standard/reflection-service.js";
import { createAuthInterceptor } from "./auth-interceptor.js";
import { type ChatServiceOptions, createChatService, defaultChatServiceOptions } from "./chat-service.js";
import { createErrorInterceptor } from "./error-interceptor.js";
import { createLogInterceptor, logGateRefusals } from "./log-interceptor.js";
import { createMetricsInterceptor } from "./metrics-interceptor.js";
import { createRateLimitInterceptor, type RateLimits } from "./rate-limit-interceptor.js";
import { createTokenGate } from "./token-gate.js";
import type { TokenVerifier } from "./token-verifier.js";

/** What the routes are built on. */
export interface RoutesDeps {
  backend: ChatBackend;
  health: HealthStatus;
  logger: Logger;
  chatServiceOptions?: ChatServiceOptions;
  /** Where the chat service counts what it does; nothing is counted without it. */
  metrics?: ChatMetrics;
  /** Signed identities: every chat call must carry a token this verifies. The authorization header names the caller when undefined. */
  tokens?: TokenVerifier;
  /** Refused tokens one address may present per minute before its calls are refused unchecked; 0 for no limit. */
  tokenFailuresPerIp?: number;
  /** Per-user and per-address rate limits; none when undefined. */
  rateLimits?: Omit<RateLimits, "sendMethod" | "connectMethod">;
}

/**
 * Creates the routes of every service this server offers: chat.v1.ChatService
 * behind its interceptors, grpc.health.v1.Health, and gRPC server reflection.
 * This is the server's one routing table: the real server's transport and
 * the in-memory test transport both register it.
 */
export function createRoutes({
  backend,
  health,
  logger,
  chatServiceOptions,
  metrics,
  tokens,
  tokenFailuresPerIp,
  rateLimits,
}: RoutesDeps): (router: ConnectRouter) => void {
  const chat = createChatService(backend, logger, { ...(chatServiceOptions ?? defaultChatServiceOptions), signed: tokens !== undefined }, metrics);
  const interceptors = [
    // The first interceptor is the outermost: metrics and the log see the
    // final status, which the error interceptor maps from the core's errors.
    ...(metrics ? [createMetricsInterceptor(metrics)] : []),
    createLogInterceptor(logger),
    createErrorInterceptor(),
    createAuthInterceptor((username) => backend.isOnline(username), [ChatService.method.connect], tokens !== undefined),
    // After auth: the send limit is per authenticated user.
    ...(rateLimits === undefined
      ? []
      : [createRateLimitInterceptor({ ...rateLimits, sendMethod: ChatService.method.sendMessage, connectMethod: ChatService.method.connect })]),
  ];
  const requestGate = tokens === undefined ? undefined : logGateRefusals(createTokenGate(tokens, tokenFailuresPerIp), logger);
  const reflection = createReflectionServices(createReflectionIndex([ChatService, Health, reflectionV1.ServerReflection, reflectionV1alpha.ServerReflection]));
  const healthService = createHealthService(health);
  return (router) => {
    router.service(ChatService, chat, requestGate === undefined ? { interceptors } : { interceptors, requestGate });
    router.service(Health, healthService);
    router.service(reflectionV1.ServerReflection, reflection.v1);
    router.service(reflectionV1alpha.ServerReflection, reflection.v1alpha);
  };
}
