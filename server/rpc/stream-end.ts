import { Code, ConnectError, createContextKey, type StreamRequest, type StreamResponse } from "@connectrpc/connect";

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

/**
 * Returns the response with its messages observed: the observer hears of the
 * first message and of the end, whichever way the stream ends. A stream whose
 * write never completes (the connection died under it) is never resumed nor
 * closed by the transport, so the call's signal counts as its end too.
 *
 * This wraps the iterator rather than adding an async generator, so that a
 * response costs one promise reaction per observer, not a generator's steps.
 */
export function observeStream(req: StreamRequest, res: StreamResponse, observer: StreamObserver): StreamResponse {
  let opened = false;
  let ended = false;
  const signal = req.signal;
  const end = (reason: unknown) => {
    if (ended) return;
    ended = true;
    signal.removeEventListener("abort", onAbort);
    observer.end(req.contextValues.get(endReasonKey) ?? reason, opened);
  };
  const onAbort = () => end(signal.reason);
  if (signal.aborted) queueMicrotask(onAbort);
  else signal.addEventListener("abort", onAbort);
  const onResult = <T>(result: IteratorResult<T>): IteratorResult<T> => {
    if (result.done === true) end(undefined);
    else if (!opened) {
      opened = true;
      observer.first?.();
    }
    return result;
  };
  const onError = (error: unknown): never => {
    end(error);
    throw error;
  };
  return {
    ...res,
    message: mapIterable(res.message, (it) => ({
      next: () => it.next().then(onResult, onError),
      return: (value?: unknown) => {
        end(signal.aborted ? signal.reason : closedEarly);
        return it.return ? it.return(value) : Promise.resolve({ done: true as const, value: undefined });
      },
      throw: (error?: unknown) => {
        end(error);
        return it.throw ? it.throw(error) : Promise.reject(error);
      },
    })),
  };
}

/** Why a stream ended when the transport closed it without aborting its signal. */
const closedEarly = new ConnectError("the stream was closed before it ended", Code.Canceled);

/**
 * Returns the response with every error its messages reject with passed
 * through map, on a wrapping iterator (see observeStream for why not a
 * generator).
 */
export function mapStreamErrors(res: StreamResponse, map: (error: unknown) => unknown): StreamResponse {
  const rethrow = (error: unknown): never => {
    throw map(error);
  };
  return {
    ...res,
    message: mapIterable(res.message, (it) => ({
      next: () => it.next().catch(rethrow),
      return: (value?: unknown) => (it.return ? it.return(value).catch(rethrow) : Promise.resolve({ done: true as const, value: undefined })),
      throw: (error?: unknown) => (it.throw ? it.throw(error).catch(rethrow) : Promise.reject(map(error))),
    })),
  };
}

function mapIterable<T>(iterable: AsyncIterable<T>, wrap: (it: AsyncIterator<T>) => AsyncIterator<T>): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]: () => wrap(iterable[Symbol.asyncIterator]()),
  };
}
