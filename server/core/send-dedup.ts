import { createHash } from "node:crypto";
import { ChatError, quote } from "./chat-error.js";
import type { ChannelRef, ChatEvent } from "./session-event.js";

/** How long, and how many, request ids of sends are remembered. */
export interface DedupBounds {
  /** How long a request id is remembered, in ms; 0 turns deduplication off. */
  windowMs: number;
  /** Request ids remembered per sender; its oldest is forgotten past it. */
  perUser: number;
  /** Request ids remembered in all; the oldest of all is forgotten past it. */
  total: number;
}

/** The defaults of {@link DedupBounds}. */
export const defaultDedupBounds: DedupBounds = { windowMs: 10 * 60 * 1000, perUser: 1000, total: 100_000 };

/** The longest request_id, in bytes of UTF-8. */
export const maxRequestIdBytes = 64;

/** What a send with a request id is remembered by: enough to answer a retry, not its text. */
export interface SentRecord {
  readonly id: string;
  readonly sentAt: Date;
  readonly channel: ChannelRef;
  /** A digest of the text, to tell a retry from another message under the same request id. */
  readonly digest: string;
}

/**
 * Throws "invalid-input" for a request id over {@link maxRequestIdBytes}; an
 * empty one asks for no deduplication and passes.
 */
export function checkRequestId(requestId: string): void {
  const bytes = Buffer.byteLength(requestId, "utf8");
  if (bytes > maxRequestIdBytes) {
    throw new ChatError("invalid-input", `request_id is ${bytes} bytes of UTF-8; at most ${maxRequestIdBytes} are allowed`);
  }
}

/** A digest of a message's text, the same on every node. */
export function textDigest(text: string): string {
  return createHash("sha256").update(text).digest("base64url").slice(0, 22);
}

/** The error of a request id used again for another message. */
export function requestIdReused(requestId: string, firstChannel: string): ChatError {
  return new ChatError(
    "invalid-input",
    `request_id ${quote(requestId)} was already used for another message (to ${quote(firstChannel)}) within the deduplication window: a retry must send the same channel and text, a new message needs a new request_id`,
  );
}

/**
 * The answer to a retry of a send the record remembers: the first call's
 * message, or "invalid-input" when the channel or the text differ.
 */
export function replayOf(record: SentRecord, request: { sender: string; channel: string; text: string; requestId: string }): ChatEvent {
  if (record.channel.name !== request.channel || record.digest !== textDigest(request.text)) throw requestIdReused(request.requestId, record.channel.name);
  const { id, sentAt, channel } = record;
  return { kind: "message", id, sender: request.sender, channel, text: request.text, textBytes: Buffer.byteLength(request.text, "utf8"), sentAt, holders: 0 };
}

interface Remembered extends SentRecord {
  readonly user: string;
  readonly key: string;
  readonly at: number;
}

/**
 * The request ids of one process's recent sends, by sender, bounded in time
 * and in number (per sender and in all), oldest forgotten first.
 */
export interface SendDedup {
  readonly enabled: boolean;
  /** The record of a sender's request id, if it is remembered. */
  get(sender: string, requestId: string): SentRecord | undefined;
  /** Remembers a sent message under its sender's request id. */
  remember(sender: string, requestId: string, event: ChatEvent): void;
  /** Forgets a sender's request ids: its session ended, and the name may pass to someone else. */
  forgetUser(sender: string): void;
  /** How many are remembered. */
  readonly size: number;
}

/** Creates the memory of request ids of one process. */
export function createSendDedup(bounds: DedupBounds, now: () => number = Date.now): SendDedup {
  // Maps keep insertion order, which is time order here: the first entry is the oldest.
  const all = new Map<string, Remembered>();
  const byUser = new Map<string, Map<string, Remembered>>();

  function forget(record: Remembered): void {
    all.delete(record.key);
    const mine = byUser.get(record.user);
    mine?.delete(record.key);
    if (mine?.size === 0) byUser.delete(record.user);
  }

  function expire(): void {
    const oldest = now() - bounds.windowMs;
    for (const record of all.values()) {
      if (record.at >= oldest) break;
      forget(record);
    }
  }

  return {
    enabled: bounds.windowMs > 0,

    get size() {
      return all.size;
    },

    get(sender, requestId) {
      expire();
      return all.get(`${sender}\n${requestId}`);
    },

    forgetUser(sender) {
      for (const record of [...(byUser.get(sender)?.values() ?? [])]) forget(record);
    },

    remember(sender, requestId, event) {
      if (bounds.windowMs <= 0) return;
      expire();
      const key = `${sender}\n${requestId}`;
      const record: Remembered = { user: sender, key, at: now(), id: event.id, sentAt: event.sentAt, channel: event.channel, digest: textDigest(event.text) };
      let mine = byUser.get(sender);
      if (mine === undefined) {
        mine = new Map();
        byUser.set(sender, mine);
      }
      mine.set(key, record);
      all.set(key, record);
      if (mine.size > bounds.perUser) forget(mine.values().next().value as Remembered); // size > 0, so a first value exists
      if (all.size > bounds.total) forget(all.values().next().value as Remembered); // likewise
    },
  };
}
