/**
 * The chat page: signs in with a username, keeps a Connect stream open, and
 * chats with users and groups through the same ChatService as every other
 * client, over the Connect protocol on HTTP/1.1.
 */

import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampNow } from "@bufbuild/protobuf/wkt";
import { type Client, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { ChannelType, type ChatMessage, ChatMessageSchema, ChatService } from "../gen/chat/v1/chat_pb.js";
import { maxNameLength, nameInputPattern } from "../server/core/names.js";
import { describeError } from "../server/rpc/code-name.js";

type ChatClient = Client<typeof ChatService>;

interface Conversation {
  /** "@name" for a user, "#name" for a group. */
  key: string;
  name: string;
  type: "user" | "group";
  messages: ChatMessage[];
  unread: number;
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
let selected: string | undefined;
let listed: { key: string; name: string; type: "user" | "group" }[] = [];
const conversations = new Map<string, Conversation>();

/** Names the caller on every call: its username, or its signed token on a server that asks for one. */
function authorization(credential: string): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${credential}`);
    return next(req);
  };
}

function setStatus(text: string, down: boolean): void {
  ui.status.textContent = text;
  ui.status.classList.toggle("down", down);
}

function conversation(key: string, name: string, type: "user" | "group"): Conversation {
  let found = conversations.get(key);
  if (found === undefined) {
    found = { key, name, type, messages: [], unread: 0 };
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
  const key = `${isGroup ? "#" : "@"}${name}`;
  const conv = conversation(key, name, isGroup ? "group" : "user");
  conv.messages.push(message);
  if (key !== selected) conv.unread++;
  if (!listed.some((c) => c.key === key)) void refreshChannels();
  render();
}

function render(): void {
  // The channel list: everyone online and every group, plus conversations
  // whose other side has gone, so that their history stays reachable.
  const entries = [...listed];
  for (const conv of conversations.values()) {
    if (!entries.some((e) => e.key === conv.key)) entries.push({ key: conv.key, name: conv.name, type: conv.type });
  }
  ui.channels.replaceChildren(
    ...entries.map((entry) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.key = entry.key;
      button.setAttribute("aria-current", String(entry.key === selected));
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

  const conv = selected === undefined ? undefined : conversations.get(selected);
  ui.title.textContent = conv === undefined ? "Pick a user or group" : `${conv.type === "group" ? "#" : "@"}${conv.name}`;
  ui.leaveGroup.hidden = conv?.type !== "group";
  const connected = client !== undefined && streamAbort !== undefined;
  ui.text.disabled = ui.send.disabled = conv === undefined || !connected;
  ui.messages.replaceChildren(
    ...(conv?.messages ?? []).map((m) => {
      const li = document.createElement("li");
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

async function refreshChannels(): Promise<void> {
  if (client === undefined) return;
  try {
    const { channels } = await client.listChannels({});
    listed = channels.map((c) => {
      const type = c.type === ChannelType.GROUP ? "group" : "user";
      return { key: `${type === "group" ? "#" : "@"}${c.name}`, name: c.name, type };
    });
    render();
  } catch {
    // The stream's end reports the outage.
  }
}

/**
 * Opens the Connect stream. Resolves when it ends; a stream that ends after
 * it was connected is reopened with exponential backoff.
 */
async function openStream(username: string): Promise<void> {
  // A signed token, when the server asks for one, stands for the username in every call.
  const token = ui.token.value.trim();
  const transport = createConnectTransport({ baseUrl: window.location.origin, interceptors: [authorization(token === "" ? username : token)] });
  const candidate = createClient(ChatService, transport);
  const abort = new AbortController();
  let connected = false;
  try {
    for await (const res of candidate.connect({ username }, { signal: abort.signal })) {
      for (const event of res.events) {
        if (event.kind.case === "connected") {
          connected = true;
          retry = 0;
          me = username;
          client = candidate;
          streamAbort = abort;
          ui.loginView.hidden = true;
          ui.chatView.hidden = false;
          setStatus(`Connected as ${username}`, false);
          void refreshChannels();
        } else if (event.kind.case === "message") {
          receive(event.kind.value);
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
    lost(describeError(error), !connected);
  }
}

let endReason = "";

/**
 * Shows why the stream ended and schedules a reconnect with backoff. A failed
 * reconnect keeps the original reason in view and adds its own.
 */
function lost(why: string, reconnectFailed: boolean): void {
  streamAbort = undefined;
  if (!reconnectFailed) endReason = why;
  const delay = Math.min(30, 2 ** retry);
  retry++;
  setStatus(
    reconnectFailed ? `Disconnected: ${endReason}. Reconnecting failed (${why}); next try in ${delay} s…` : `Disconnected: ${why}. Reconnecting in ${delay} s…`,
    true,
  );
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
    void refreshChannels();
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
  void act(() => client!.leaveGroupChat({ name: conv.name }), ui.sendError).then(() => refreshChannels());
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
      conv.messages.push(
        create(ChatMessageSchema, {
          id: `sent-${Date.now()}`,
          sender: me,
          channel: { name: conv.name, type: ChannelType.USER },
          text,
          sentAt: timestampNow(),
        }),
      );
      render();
    }
  });
});

// Others come and go: keep the list fresh.
setInterval(() => void refreshChannels(), 3000);
