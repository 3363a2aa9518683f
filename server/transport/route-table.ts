import type { DescMethod, DescService } from "@bufbuild/protobuf";
import {
  type ConnectRouter,
  type ConnectRouterOptions,
  createConnectRouter,
  createMethodImplSpec,
  createServiceImplSpec,
  type Interceptor,
  type MethodImpl,
  type MethodImplSpec,
  type ServiceImpl,
} from "@connectrpc/connect";
import type { UniversalHandler, UniversalHandlerOptions } from "@connectrpc/connect/protocol";
import { createLeanMethod, type LeanMethod } from "./lean/lean-method.js";

/** What serves one request path: Connect's handler, and the lean path's method when it can take it. */
export interface Route {
  handler: UniversalHandler;
  lean: LeanMethod | undefined;
}

/**
 * Registers the routes with a Connect router and returns, by request path,
 * what serves each one. Connect's router builds the handlers; the methods it
 * was given, with their interceptors, are prepared for the lean path as the
 * routes register them, so that both paths come from the one routing table.
 */
export function createRouteTable(routes: (router: ConnectRouter) => void, options: ConnectRouterOptions & { readMaxBytes: number }): Map<string, Route> {
  const router = createConnectRouter(options);
  const lean = new Map<DescMethod, LeanMethod>();
  const prepare = (spec: MethodImplSpec, handlerOptions: Partial<UniversalHandlerOptions> | undefined) => {
    // As in Connect's router, a route's own options replace the router's.
    const interceptors: Interceptor[] = handlerOptions?.interceptors ?? options.interceptors ?? [];
    const method = createLeanMethod(spec, interceptors, options.readMaxBytes, handlerOptions?.requestGate ?? options.requestGate);
    if (method !== undefined) lean.set(spec.method, method);
  };
  const recorder: ConnectRouter = {
    get handlers() {
      return router.handlers;
    },
    service<T extends DescService>(service: T, implementation: Partial<ServiceImpl<T>>, handlerOptions?: Partial<UniversalHandlerOptions>) {
      router.service(service, implementation, handlerOptions);
      for (const spec of Object.values(createServiceImplSpec(service, implementation).methods)) prepare(spec, handlerOptions);
      return recorder;
    },
    rpc<M extends DescMethod>(method: M, impl: MethodImpl<M>, handlerOptions?: Partial<UniversalHandlerOptions>) {
      router.rpc(method, impl, handlerOptions);
      prepare(createMethodImplSpec(method, impl), handlerOptions);
      return recorder;
    },
  };
  routes(recorder);
  const table = new Map<string, Route>();
  for (const handler of router.handlers) {
    table.set(handler.requestPath, { handler, lean: lean.get(handler.method) });
  }
  return table;
}
