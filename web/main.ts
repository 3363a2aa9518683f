/**
 * The chat page: signs in with a username, keeps a Connect stream open, and
 * chats with users and groups through the same ChatService as every other
 * client, over the Connect protocol on HTTP/1.1. It follows the stream's
 * presence and membership events rather than polling: the channel list, the
 * open group's members, and whether the user is in it. When the stream
 * drops, it resumes the session with its token, so a network blip costs
 * neither the groups nor the messages sent meanwhile.
 */

import { create } from "@bufbuild/protobuf";
import { durationMs, timestampDate, timestampNow } from "@bufbuild/protobuf/wkt";
import { type Client, Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { describeError } from "../client/sdk/describe-error.js";
import { maxNameLength, nameInputPattern } from "../client/sdk/name-rule.js";
import {
  type Channel,
  ChannelType,
  type ChatMessage,
  ChatMessageSchema,
  ChatService,
  type Connected,
  type Event,
  LeaveReason,
} from "../gen/chat/v1/chat_pb.js";

type ChatClient = Client<typeof ChatService>;

/** One line of a conversation: a message, or a note such as "bob joined". */
type Line = { message: ChatMessage } | { note: string };

interface Conversation {
  /** "@name" for a user, "#name" for a group. */
  key: string;
  name: string;
  type: "user" | "group";
  lines: Line[];
  unread: number;
}

interface Listed {
  key: string;
  name: string;
  type: "user" | "group";
}

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`no element #${id}`);
  return found as T;
}

const ui = {
  status: element<HTMLParagraphElement>("status"),
  loginView: element<HTMLElement>("login-view"),
  loginForm: element<HTMLFormElement>("login-form"),
  username: element<HTMLInputElement>("username"),
  token: element<HTMLInputElement>("token"),
  loginError: element<HTMLParagraphElement>("login-error"),
  chatView: element<HTMLElement>("chat-view"),
  groupForm: element<HTMLFormElement>("group-form"),
  groupName: element<HTMLInputElement>("group-name"),
  joinGroup: element<HTMLButtonElement>("join-group"),
  groupError: element<HTMLParagraphElement>("group-error"),
  channels: element<HTMLUListElement>("channels"),
  title: element<HTMLHeadingElement>("conversation-title"),
  leaveGroup: element<HTMLButtonElement>("leave-group"),
  joinHere: element<HTMLButtonElement>("join-here"),
  members: element<HTMLParagraphElement>("members"),
  messages: element<HTMLOListElement>("messages"),
  composer: element<HTMLFormElement>("composer"),
  text: element<HTMLInputElement>("text"),
  send: element<HTMLButtonElement>("send"),
  sendError: element<HTMLParagraphElement>("send-error"),
};

// The server's own rule for names, so that the form and the server agree.
ui.username.pattern = nameInputPattern;
ui.username.maxLength = maxNameLength;

let me = "";
let client: ChatClient | undefined;
let streamAbort: AbortController | undefined;
let retry = 0;
let retryTimer: ReturnType<typeof setTimeout> | undefined;
let pollTimer: ReturnType<typeof setInterval> | undefined;
let selected: string | undefined;
const listed = new Map<string, Listed>();
const conversations = new Map<string, Conversation>();
/** The groups the user is in, and their members: kept by membership events. */
const members = new Map<string, Set<string>>();
/** What resumes the session after a drop: its token, and how many events arrived after Connected. */
const session = { resumeToken: "", received: 0, graceMs: 0, droppedAt: 0 };

/** Names the caller on every call: its username, or its signed token on a server that asks for one. */
function authorization(credential: string): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${credential}`);
    return next(req);
  };
}

/** One short line, never wrapped (see style.css); the whole story is in its tooltip. */
function setStatus(text: string, down: boolean, detail = text): void {
  ui.status.textContent = text;
  ui.status.title = detail;
  ui.status.classList.toggle("down", down);
}

function conversation(key: string, name: string, type: "user" | "group"): Conversation {
  let found = conversations.get(key);
  if (found === undefined) {
    found = { key, name, type, lines: [], unread: 0 };
    conversations.set(key, found);
  }
  return found;
}

function receive(message: ChatMessage): void {
  const channel = message.channel;
  if (channel === undefined) return;
  const isGroup = channel.type === ChannelType.GROUP;
  // A direct message belongs to the conversation with the other party.
  const name = isGroup ? channel.name : message.sender === me ? channel.name : message.sender;
  const key = keyOf({ name, type: channel.type });
  const conv = conversation(key, name, isGroup ? "group" : "user");
  conv.lines.push({ message });
  if (key !== selected) conv.unread++;
  render();
}

/** A note in a group's conversation, when the user has it open or had it before. */
function note(group: string, text: string): void {
  const conv = conversations.get(`#${group}`);
  if (conv === undefined) return;
  conv.lines.push({ note: text });
}

const leaveWords: Record<LeaveReason, string> = {
  [LeaveReason.UNSPECIFIED]: "",
  [LeaveReason.LEFT]: "",
  [LeaveReason.DISCONNECTED]: " (disconnected)",
  [LeaveReason.CUT_OFF]: " (cut off: too far behind)",
  [LeaveReason.GROUP_DELETED]: " (the group was deleted)",
};

/** Applies one event of the stream to the page's state. */
function apply(event: Event): void {
  const { kind } = event;
  if (kind.case === "message") {
    receive(kind.value);
  } else if (kind.case === "memberJoined") {
    const { group, username } = kind.value;
    if (username === me) {
      members.set(group, new Set([me]));
      // It exists, whenever presence says so.
      list({ name: group, type: ChannelType.GROUP });
      conversation(`#${group}`, group, "group");
      void loadMembers(group);
    } else {
      members.get(group)?.add(username);
      note(group, `${username} joined`);
    }
  } else if (kind.case === "memberLeft") {
    const { group, username, reason } = kind.value;
    if (username === me) members.delete(group);
    else members.get(group)?.delete(username);
    note(group, `${username === me ? "you" : username} left${leaveWords[reason]}`);
  } else if (kind.case === "channelsChanged") {
    for (const channel of kind.value.added) list(channel);
    for (const channel of kind.value.removed) listed.delete(keyOf(channel));
  }
  render();
}

function keyOf(channel: Pick<Channel, "name" | "type">): string {
  return `${channel.type === ChannelType.GROUP ? "#" : "@"}${channel.name}`;
}

function list(channel: Pick<Channel, "name" | "type">): void {
  const type = channel.type === ChannelType.GROUP ? "group" : "user";
  listed.set(keyOf(channel), { key: keyOf(channel), name: channel.name, type });
}

/**
 * Lists a group's members once, after the user's own join: the membership
 * events that follow keep the list; those that arrive before this answer are
 * already in it, and applying them again changes nothing.
 */
async function loadMembers(group: string): Promise<void> {
  const found = new Set<string>();
  try {
    let pageToken = "";
    do {
      const page = await client!.listGroupMembers({ group, pageToken });
      for (const name of page.usernames) found.add(name);
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
  } catch {
    return;
  }
  const known = members.get(group);
  if (known === undefined) return;
  for (const name of found) known.add(name);
  render();
}

function render(): void {
  // The channel list: everyone online and every group, plus conversations
  // whose other side has gone, so that their history stays reachable.
  const entries = [...listed.values()];
  for (const conv of conversations.values()) {
    if (!listed.has(conv.key)) entries.push({ key: conv.key, name: conv.name, type: conv.type });
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  ui.channels.replaceChildren(
    ...entries.map((entry) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.key = entry.key;
      button.setAttribute("aria-current", String(entry.key === selected));
      // A conversation whose user went offline or whose group is gone.
      button.classList.toggle("gone", !listed.has(entry.key));
      const label = document.createElement("span");
      const kind = document.createElement("span");
      kind.className = "kind";
      kind.textContent = entry.type === "group" ? "#" : "@";
      kind.setAttribute("aria-label", entry.type === "group" ? "group" : "user");
      label.append(kind, entry.name + (entry.type === "user" && entry.name === me ? " (you)" : ""));
      button.append(label);
      const unread = conversations.get(entry.key)?.unread ?? 0;
      if (unread > 0) {
        const badge = document.createElement("span");
        badge.className = "badge";
        badge.textContent = String(unread);
        badge.setAttribute("aria-label", `${unread} unread`);
        button.append(badge);
      }
      button.addEventListener("click", () => select(entry.key, entry.name, entry.type));
      li.append(button);
      return li;
    }),
  );

  renderConversation();
}

function renderConversation(): void {
  const conv = selected === undefined ? undefined : conversations.get(selected);
  const gone = conv !== undefined && !listed.has(conv.key);
  const member = conv?.type === "group" && members.has(conv.name);
  const goneWords = conv?.type === "group" ? " · no longer exists" : " · offline";
  ui.title.textContent = conv === undefined ? "Pick a user or group" : `${conv.type === "group" ? "#" : "@"}${conv.name}${gone ? goneWords : ""}`;
  ui.leaveGroup.hidden = !member;
  ui.joinHere.hidden = conv?.type !== "group" || member || gone;
  const names = member ? [...(members.get(conv.name) ?? [])].sort() : [];
  ui.members.hidden = names.length === 0;
  ui.members.textContent = `Members: ${names.join(", ")}`;
  const connected = client !== undefined && streamAbort !== undefined;
  ui.text.disabled = ui.send.disabled = conv === undefined || !connected || gone || (conv.type === "group" && !member);
  ui.messages.replaceChildren(
    ...(conv?.lines ?? []).map((line) => {
      const li = document.createElement("li");
      if ("note" in line) {
        li.className = "note";
        li.textContent = line.note;
        return li;
      }
      const m = line.message;
      li.classList.toggle("mine", m.sender === me);
      const meta = document.createElement("div");
      meta.className = "meta";
      const time = m.sentAt ? timestampDate(m.sentAt) : new Date();
      meta.textContent = `${m.sender} · ${time.toLocaleTimeString()}`;
      const text = document.createElement("div");
      text.className = "text";
      text.textContent = m.text;
      li.append(meta, text);
      return li;
    }),
  );
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

function select(key: string, name: string, type: "user" | "group"): void {
  selected = key;
  conversation(key, name, type).unread = 0;
  ui.sendError.textContent = "";
  render();
  ui.text.focus();
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
    listed.clear();
    for (const channel of fresh) list(channel);
    render();
  } catch {
    // The stream's end reports the outage.
  }
}

function clientFor(username: string): ChatClient {
  // A signed token, when the server asks for one, stands for the username in every call.
  const token = ui.token.value.trim();
  const transport = createConnectTransport({ baseUrl: window.location.origin, interceptors: [authorization(token === "" ? username : token)] });
  return createClient(ChatService, transport);
}

/**
 * Opens the Connect stream, resuming the session when it has a token.
 * Resolves when it ends; a stream that ends after it was connected is
 * reopened, at once and then with backoff.
 */
async function openStream(username: string): Promise<void> {
  const candidate = clientFor(username);
  const abort = new AbortController();
  let connected = false;
  const resume = session.resumeToken === "" ? {} : { resumeToken: session.resumeToken, receivedEvents: BigInt(session.received) };
  try {
    for await (const res of candidate.connect({ username, membershipEvents: true, presenceEvents: true, ...resume }, { signal: abort.signal })) {
      for (const event of res.events) {
        if (event.kind.case === "connected") {
          connected = true;
          onConnected(event.kind.value, username, candidate, abort, resume.resumeToken !== undefined);
        } else {
          session.received++;
          apply(event);
        }
      }
    }
    if (connected) lost("the server ended the stream", false);
  } catch (error) {
    if (!connected && me === "") {
      ui.loginError.textContent = describeError(error);
      setStatus("Not connected", false);
      return;
    }
    lost(describeError(error), !connected, error);
  }
}

function onConnected(hello: Connected, username: string, candidate: ChatClient, abort: AbortController, resuming: boolean): void {
  retry = 0;
  me = username;
  client = candidate;
  streamAbort = abort;
  ui.loginView.hidden = true;
  ui.chatView.hidden = false;
  if (!hello.resumed) {
    // A fresh session: whatever the last one had is gone, groups included.
    session.received = 0;
    members.clear();
    void refreshChannels();
  } else {
    // The events the server could no longer replay still count: the count is the page's place in the session.
    session.received += Number(hello.lostEvents);
    // Listed again: after a reload the page knows its groups but not their members.
    for (const group of members.keys()) void loadMembers(group);
  }
  session.resumeToken = hello.resumeToken;
  session.graceMs = hello.resumeGrace === undefined ? 0 : durationMs(hello.resumeGrace);
  clearInterval(pollTimer);
  // A server with presence off: keep the list fresh by asking.
  if (!hello.presenceEvents) pollTimer = setInterval(() => void refreshChannels(), 3000);
  if (resuming && !hello.resumed)
    setStatus(
      `Connected as ${username}: a new session`,
      true,
      "The connection was lost for too long: the groups were left, and messages may have been missed.",
    );
  else if (hello.lostEvents > 0n)
    setStatus(
      `Connected as ${username}: ${hello.lostEvents} missed`,
      true,
      `${hello.lostEvents} events sent while the connection was lost could not be replayed.`,
    );
  else setStatus(`Connected as ${username}`, false);
  render();
}

let endReason = "";

/**
 * Shows why the stream ended, in one short line, and reconnects: at once
 * while the session can still be resumed (its grace), then with backoff.
 */
function lost(why: string, reconnectFailed: boolean, error?: unknown): void {
  streamAbort = undefined;
  if (!reconnectFailed) {
    endReason = why;
    session.droppedAt = Date.now();
  }
  // Taken over by another tab, or refused for good: reconnecting would take the session back and forth.
  const code = error instanceof ConnectError ? error.code : undefined;
  if (code === Code.Aborted) {
    setStatus("Disconnected: this user connected elsewhere", true, why);
    render();
    return;
  }
  const resumable = session.resumeToken !== "" && Date.now() - session.droppedAt < session.graceMs;
  const delay = resumable ? Math.min(2, 0.25 * 2 ** retry) : Math.min(30, 2 ** retry);
  retry++;
  // While resuming, the chat stays as it was: only a quiet word says so.
  if (resumable) setStatus("Reconnecting…", false, `Connection lost (${endReason}); resuming the session, try ${retry}.`);
  else setStatus(`Disconnected: ${endReason}. Reconnecting…`, true, reconnectFailed ? `Try ${retry} failed: ${why}` : why);
  render();
  clearTimeout(retryTimer);
  retryTimer = setTimeout(() => void openStream(me), delay * 1000);
}

async function act(what: () => Promise<unknown>, errorLine: HTMLElement): Promise<boolean> {
  errorLine.textContent = "";
  try {
    await what();
    return true;
  } catch (error) {
    errorLine.textContent = describeError(error);
    return false;
  }
}

ui.loginForm.addEventListener("submit", (event) => {
  event.preventDefault();
  ui.loginError.textContent = "";
  setStatus("Connecting…", false);
  void openStream(ui.username.value.trim());
});

ui.groupForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const name = ui.groupName.value.trim();
  void act(() => client!.createGroupChat({ name }), ui.groupError).then((ok) => {
    if (!ok) return;
    ui.groupName.value = "";
    select(`#${name}`, name, "group");
  });
});

ui.joinGroup.addEventListener("click", () => {
  const name = ui.groupName.value.trim();
  void act(() => client!.joinGroupChat({ name }), ui.groupError).then((ok) => {
    if (!ok) return;
    ui.groupName.value = "";
    select(`#${name}`, name, "group");
  });
});

ui.leaveGroup.addEventListener("click", () => {
  const conv = selected === undefined ? undefined : conversations.get(selected);
  if (conv === undefined) return;
  void act(() => client!.leaveGroupChat({ name: conv.name }), ui.sendError);
});

ui.joinHere.addEventListener("click", () => {
  const conv = selected === undefined ? undefined : conversations.get(selected);
  if (conv === undefined) return;
  void act(() => client!.joinGroupChat({ name: conv.name }), ui.sendError);
});

ui.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  const conv = selected === undefined ? undefined : conversations.get(selected);
  const text = ui.text.value;
  if (conv === undefined || text === "") return;
  void act(() => client!.sendMessage({ channel: conv.name, text }), ui.sendError).then((ok) => {
    if (!ok) return;
    ui.text.value = "";
    // The server echoes group messages to their sender, but a direct
    // message goes to its recipient alone: show it here as sent.
    if (conv.type === "user" && conv.name !== me) {
      conv.lines.push({
        message: create(ChatMessageSchema, {
          id: `sent-${Date.now()}`,
          sender: me,
          channel: { name: conv.name, type: ChannelType.USER },
          text,
          sentAt: timestampNow(),
        }),
      });
      render();
    }
  });
});

/**
 * A reload, or a tab restored, resumes its session: on the plain web port a
 * page that goes away cannot say goodbye (HTTP/1.1 cancels by closing the
 * socket), so the server holds its session for the grace, and a fresh
 * Connect would find the name held. The resume token and the count go to
 * sessionStorage, which this tab alone reads, as the page goes away; a
 * signed token is never stored, so a page that needed one signs in again.
 */
const savedKey = "chat.resume";
window.addEventListener("pagehide", () => {
  if (me === "" || session.resumeToken === "" || ui.token.value.trim() !== "") return;
  // The groups too: the events after the count keep them, but nothing lists a user's groups.
  const groups = [...members.keys()];
  sessionStorage.setItem(
    savedKey,
    JSON.stringify({ username: me, resumeToken: session.resumeToken, received: session.received, graceMs: session.graceMs, groups }),
  );
});
const saved: unknown = JSON.parse(sessionStorage.getItem(savedKey) ?? "null");
sessionStorage.removeItem(savedKey);
if (isSaved(saved)) {
  ui.username.value = saved.username;
  Object.assign(session, { resumeToken: saved.resumeToken, received: saved.received, graceMs: saved.graceMs, droppedAt: Date.now() });
  for (const group of saved.groups) members.set(group, new Set([saved.username]));
  setStatus("Reconnecting…", false);
  void openStream(saved.username).then(() => {
    // A resume the server refused (the grace is over and the name taken): sign in again.
    if (me === "") session.resumeToken = "";
  });
}

function isSaved(value: unknown): value is { username: string; resumeToken: string; received: number; graceMs: number; groups: string[] } {
  if (typeof value !== "object" || value === null) return false;
  const v: Record<string, unknown> = { ...value };
  return (
    typeof v.username === "string" &&
    typeof v.resumeToken === "string" &&
    typeof v.received === "number" &&
    typeof v.graceMs === "number" &&
    Array.isArray(v.groups) &&
    v.groups.every((g) => typeof g === "string")
  );
}
