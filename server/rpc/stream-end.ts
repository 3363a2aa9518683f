import { Code, ConnectError, type ContextValues, createContextKey, type StreamRequest, type StreamResponse } from "@connectrpc/connect";

/**
 * The context value in which a streaming handler records why its stream is
 * ending when it knows better than the transport: a chat session cut off for
 * falling behind ends with a reset, but the reason is that it fell behind.
 */
export const endReasonKey = createContextKey<unknown>(undefined, { description: "why the handler ended its stream" });

/** What a stream's observer is told. */
export interface StreamObserver {
  /** The first response is on its way. */
  first?(): void;
  /**
   * The stream ended, once: with undefined when the handler finished, or with
   * why it did not (an error, or the call's signal's reason when the client
   * left or the server is shutting down).
   */
  end(reason: unknown, opened: boolean): void;
}

/** Why a stream ended when the transport closed it without aborting its signal. */
const closedEarly = new ConnectError("the stream was closed before it ended", Code.Canceled);

/** The watch of a call's stream, which every observing interceptor shares. */
const watchKey = createContextKey<StreamWatch<unknown> | undefined>(undefined, { description: "the watch of the call's stream" });

/**
 * Returns the response with its messages observed: the observer hears of the
 * first message and of the end, whichever way the stream ends. A stream whose
 * write never completes (the connection died under it) is never resumed nor
 * closed by the transport, so the call's signal counts as its end too.
 *
 * Every interceptor of a call shares one watch, and the watch is a class, not
 * closures: an idle stream holds a few small objects for all its observers,
 * where closures and a wrapper per observer cost about 9 KiB per stream
 * (measured with 5,000 idle streams).
 */
export function observeStream(req: StreamRequest, res: StreamResponse, observer: StreamObserver): StreamResponse {
  const current = req.contextValues.get(watchKey);
  if (current !== undefined && res.message === current) {
    current.observers.push(observer);
    return res;
  }
  const watch = new StreamWatch(res.message, req.signal, req.contextValues, observer);
  req.contextValues.set(watchKey, watch);
  return { stream: true, service: res.service, method: res.method, header: res.header, trailer: res.trailer, message: watch };
}

class StreamWatch<T> implements AsyncIterable<T> {
  readonly observers: StreamObserver[];
  opened = false;
  ended = false;
  private readonly onAbort = () => this.end(this.signal.reason);

  constructor(
    private readonly source: AsyncIterable<T>,
    private readonly signal: AbortSignal,
    private readonly values: ContextValues,
    observer: StreamObserver,
  ) {
    this.observers = [observer];
    if (signal.aborted) queueMicrotask(this.onAbort);
    else signal.addEventListener("abort", this.onAbort);
  }

  /** Ends the watch once, telling every observer. */
  end(reason: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.signal.removeEventListener("abort", this.onAbort);
    const why = this.values.get(endReasonKey) ?? reason;
    for (const observer of this.observers) observer.end(why, this.opened);
  }

  first(): void {
    this.opened = true;
    for (const observer of this.observers) observer.first?.();
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return new WatchedIterator(this, this.source[Symbol.asyncIterator]());
  }

  closedBy(): unknown {
    return this.signal.aborted ? this.signal.reason : closedEarly;
  }
}

class WatchedIterator<T> implements AsyncIterator<T> {
  constructor(
    private readonly watch: StreamWatch<T>,
    private readonly it: AsyncIterator<T>,
  ) {}

  next(): Promise<IteratorResult<T>> {
    return this.it.next().then(
      (result) => {
        if (result.done === true) this.watch.end(undefined);
        else if (!this.watch.opened) this.watch.first();
        return result;
      },
      (error: unknown) => {
        this.watch.end(error);
        throw error;
      },
    );
  }

  return(value?: unknown): Promise<IteratorResult<T>> {
    this.watch.end(this.watch.closedBy());
    return this.it.return ? this.it.return(value) : Promise.resolve({ done: true, value: undefined });
  }

  throw(error?: unknown): Promise<IteratorResult<T>> {
    this.watch.end(error);
    return this.it.throw ? this.it.throw(error) : Promise.reject(error);
  }
}

/**
 * Returns the response with every error its messages reject with passed
 * through map, on a wrapping iterator rather than one more async generator.
 */
export function mapStreamErrors(res: StreamResponse, map: (error: unknown) => unknown): StreamResponse {
  return { stream: true, service: res.service, method: res.method, header: res.header, trailer: res.trailer, message: new MappedErrors(res.message, map) };
}

class MappedErrors<T> implements AsyncIterable<T> {
  constructor(
    private readonly source: AsyncIterable<T>,
    private readonly map: (error: unknown) => unknown,
  ) {}

  [Symbol.asyncIterator](): AsyncIterator<T> {
    const it = this.source[Symbol.asyncIterator]();
    const rethrow = (error: unknown): never => {
      throw this.map(error);
    };
    return {
      next: () => it.next().catch(rethrow),
      return: (value?: unknown) => (it.return ? it.return(value).catch(rethrow) : Promise.resolve({ done: true as const, value: undefined })),
      throw: (error?: unknown) => (it.throw ? it.throw(error).catch(rethrow) : Promise.reject(this.map(error))),
    };
  }
}
