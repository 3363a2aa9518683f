import { Code, ConnectError } from "@connectrpc/connect";
import { readHistoryPage, readMissed } from "../client/sdk/read-history.js";
import type { ChatClient } from "../client/sdk/resumable-session.js";
import { addHistory, type Conversation, state } from "./chat-state.js";
import { ui } from "./page-elements.js";
import { render } from "./render.js";

/** How many messages a page of history holds (the server may make it fewer). */
const pageSize = 50;

/**
 * Reads the latest page of a conversation's history the first time it is
 * opened, and older pages while the open one does not fill its list. The
 * history comes from the server, so a reload shows the conversation as it
 * was. A read that fails (a group the user is not in yet) is tried again
 * the next time; a server that keeps no history is not asked again.
 */
export async function loadLatest(client: ChatClient, conv: Conversation): Promise<void> {
  if (conv.olderToken !== undefined || conv.loading) return;
  await readPage(client, conv, "");
}

/** Reads the page before the earliest one read, when the user scrolls to the top of the open conversation. */
export async function loadOlder(client: ChatClient, conv: Conversation): Promise<void> {
  if (conv.olderToken === undefined || conv.olderToken === "" || conv.loading) return;
  await readPage(client, conv, conv.olderToken);
}

async function readPage(client: ChatClient, conv: Conversation, olderToken: string): Promise<void> {
  conv.loading = true;
  try {
    const page = await readHistoryPage(client, conv.name, pageSize, olderToken);
    // The list keeps its place: what was in view stays there, older messages above it.
    const fromBottom = ui.messages.scrollHeight - ui.messages.scrollTop;
    addHistory(conv, page.messages);
    conv.olderToken = page.olderToken;
    if (conv.key !== state.selected) return;
    render();
    if (olderToken !== "") ui.messages.scrollTop = ui.messages.scrollHeight - fromBottom;
  } catch (error) {
    // History switched off at the server: there is none to read, now or later.
    if (ConnectError.from(error).code === Code.FailedPrecondition) conv.olderToken = "";
    return;
  } finally {
    conv.loading = false;
  }
  // Too few to scroll: there is no scrolling to the top to ask for more.
  if (ui.messages.scrollHeight <= ui.messages.clientHeight) await loadOlder(client, conv);
}

/**
 * After a resume that lost events: reads, for every conversation the page
 * has messages of, the ones it missed, back to one it had, and adds them
 * in their place (counted unread unless the conversation is open). The
 * snapshot of what it had is taken first: what the server replays meanwhile
 * must not stop the reading short of the messages lost before it. A
 * conversation it has no message of is read when opened.
 */
export async function fillGaps(client: ChatClient): Promise<void> {
  const had = new Map([...state.conversations.values()].filter((conv) => conv.ids.size > 0).map((conv) => [conv, new Set(conv.ids)]));
  await Promise.all(
    [...had].map(async ([conv, ids]) => {
      try {
        const added = addHistory(conv, await readMissed(client, conv.name, (id) => ids.has(id), state.me));
        if (conv.key !== state.selected) conv.unread += added;
      } catch {
        // A group left meanwhile: nothing more to show of it.
      }
    }),
  );
  render();
}
