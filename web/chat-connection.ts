import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { createAuthorizationInterceptor } from "../client/sdk/authorization-interceptor.js";
import {
  type ChatClient,
  createResumableSession,
  type ResumableSession,
  type SessionEnd,
  type SessionPlace,
  type SessionRetry,
} from "../client/sdk/resumable-session.js";
import { type Channel, ChatService, type Connected } from "../gen/chat/v1/chat_pb.js";
import { apply, list, state } from "./chat-state.js";
import { fillGaps, loadLatest } from "./conversation-history.js";
import { showError } from "./error-line.js";
import { errorWords, sentence } from "./error-words.js";
import { ui } from "./page-elements.js";
import { render, setStatus } from "./render.js";

/** The signed-in user's client and session, once a stream has connected. */
let client: ChatClient | undefined;
let session: ResumableSession | undefined;
let pollTimer: ReturnType<typeof setInterval> | undefined;
/** Why the connection was lost, in words, kept while the page tries again. */
let lostWords = "";

/** The client of the signed-in user, for the page's calls; undefined before the first Connected. */
export function chatClient(): ChatClient | undefined {
  return client;
}

/** Where the session stands, to save it; undefined before the first Connected. */
export function sessionPlace(): SessionPlace | undefined {
  return client === undefined ? undefined : session?.place();
}

/**
 * Signs in: opens the Connect stream as the user, with a signed token for
 * a server that asks for one, and keeps the session through dropped
 * streams (see createResumableSession: it resumes while the server holds
 * the session, and then goes on as a fresh one). resumeFrom resumes a
 * session the tab had before a reload. Resolves when the session is over;
 * one that never connected leaves the page signed out, with the reason.
 */
export async function signIn(username: string, token: string, resumeFrom?: SessionPlace): Promise<void> {
  // A signed token, when the server asks for one, stands for the username in every call.
  const transport = createConnectTransport({
    baseUrl: window.location.origin,
    interceptors: [createAuthorizationInterceptor(token === "" ? username : token)],
  });
  const candidate = createClient(ChatService, transport);
  session = createResumableSession({
    client: candidate,
    username,
    membershipEvents: true,
    presenceEvents: true,
    retry: "always",
    // The page has no sign-out: the session lasts as long as the tab.
    signal: new AbortController().signal,
    ...(resumeFrom === undefined ? {} : { resumeFrom }),
    onConnected: (hello, resuming) => connected(hello, resuming, username, candidate),
    onEvent(event) {
      const joined = apply(event);
      if (joined !== undefined) void loadMembers(joined);
      render();
      // Joined the open group: its history can be read now.
      const open = joined === undefined ? undefined : state.conversations.get(`#${joined}`);
      if (open !== undefined && open.key === state.selected) void loadLatest(candidate, open);
    },
    onRetry: retrying,
  });
  ended(await session.run());
}

function connected(hello: Connected, resuming: boolean, username: string, candidate: ChatClient): void {
  state.me = username;
  state.online = true;
  client = candidate;
  ui.loginView.hidden = true;
  ui.chatView.hidden = false;
  if (!hello.resumed) {
    // A fresh session: whatever the last one had is gone, groups included.
    state.members.clear();
    void refreshChannels();
  } else {
    // Listed again: after a reload the page knows its groups but not their members.
    for (const group of state.members.keys()) void loadMembers(group);
  }
  clearInterval(pollTimer);
  // A server with presence off: keep the list fresh by asking.
  if (!hello.presenceEvents) pollTimer = setInterval(() => void refreshChannels(), 3000);
  if (resuming && !hello.resumed) {
    setStatus(
      `Connected as ${username}: a new session`,
      true,
      "The connection was lost for too long: the groups were left, and messages may have been missed.",
    );
  } else if (hello.lostEvents > 0n) {
    setStatus(
      `Connected as ${username}: ${hello.lostEvents} missed`,
      true,
      `${hello.lostEvents} events sent while the connection was lost could not be replayed: the messages among them are read from history.`,
    );
    void fillGaps(candidate);
  } else {
    setStatus(`Connected as ${username}`, false);
  }
  render();
}

/** Shows why the stream ended, in one short line, while the session tries again. */
function retrying({ reason, attempt, resumable }: SessionRetry): void {
  state.online = false;
  const words = reason === undefined ? "the server ended the stream" : errorWords(reason);
  if (attempt === 1) lostWords = words;
  // While resuming, the chat stays as it was: only a quiet word says so.
  if (resumable) setStatus("Reconnecting…", false, `Connection lost (${lostWords}); resuming the session, try ${attempt}.`);
  else setStatus(`Disconnected: ${lostWords}. Reconnecting…`, true, attempt === 1 ? words : `Try ${attempt} failed: ${words}`);
  render();
}

/** Shows why the session is over: next to the sign-in form when it never connected, else in the status line. */
function ended(end: SessionEnd): void {
  state.online = false;
  clearInterval(pollTimer);
  if (end.kind !== "failed") return;
  if (!end.connected) {
    showError(ui.loginError, sentence(errorWords(end.error, "naming")));
    setStatus("Not connected", false);
    return;
  }
  // Taken over by another tab: reconnecting would take the session back and forth.
  const takenOver = end.error instanceof ConnectError && end.error.code === Code.Aborted;
  setStatus(takenOver ? "Disconnected: this user connected elsewhere" : `Disconnected: ${errorWords(end.error)}`, true, errorWords(end.error));
  render();
}

/**
 * Lists a group's members once, after the user's own join: the membership
 * events that follow keep the list; those that arrive before this answer are
 * already in it, and applying them again changes nothing.
 */
async function loadMembers(group: string): Promise<void> {
  if (client === undefined) return;
  const found = new Set<string>();
  try {
    let pageToken = "";
    do {
      const page = await client.listGroupMembers({ group, pageToken });
      for (const name of page.usernames) found.add(name);
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
  } catch {
    return;
  }
  const known = state.members.get(group);
  if (known === undefined) return;
  for (const name of found) known.add(name);
  render();
}

/** Lists every channel, page by page: at sign-in, and as the fallback when the server sends no presence. */
async function refreshChannels(): Promise<void> {
  if (client === undefined) return;
  try {
    const fresh: Channel[] = [];
    let pageToken = "";
    do {
      const page = await client.listChannels({ pageToken });
      fresh.push(...page.channels);
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    state.listed.clear();
    for (const channel of fresh) list(channel);
    render();
  } catch {
    // The stream's end reports the outage.
  }
}
