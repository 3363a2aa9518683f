import { timestampDate } from "@bufbuild/protobuf/wkt";
import { type Conversation, type Listed, state } from "./chat-state.js";
import { ui } from "./page-elements.js";

/** One short line, never wrapped (see style.css); the whole story is in its tooltip. */
export function setStatus(text: string, down: boolean, detail = text): void {
  ui.status.textContent = text;
  ui.status.title = detail;
  ui.status.classList.toggle("down", down);
}

/**
 * Draws the channel list and the open conversation from the state. Each
 * channel is a button whose data-key names it, for the list's one click
 * listener (see main.ts).
 */
export function render(): void {
  // The channel list: everyone online and every group, plus conversations
  // whose other side has gone, so that their history stays reachable.
  const entries: Listed[] = [...state.listed.values()];
  for (const conv of state.conversations.values()) {
    if (!state.listed.has(conv.key)) entries.push({ key: conv.key, name: conv.name, type: conv.type });
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  ui.channels.replaceChildren(
    ...entries.map((entry) => {
      const li = document.createElement("li");
      li.append(channelButton(entry));
      return li;
    }),
  );
  renderConversation();
}

function channelButton(entry: Listed): HTMLButtonElement {
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.key = entry.key;
  button.setAttribute("aria-current", String(entry.key === state.selected));
  // A conversation whose user went offline or whose group is gone.
  button.classList.toggle("gone", !state.listed.has(entry.key));
  const label = document.createElement("span");
  const kind = document.createElement("span");
  kind.className = "kind";
  kind.textContent = entry.type === "group" ? "#" : "@";
  kind.setAttribute("aria-label", entry.type === "group" ? "group" : "user");
  label.append(kind, entry.name + (entry.type === "user" && entry.name === state.me ? " (you)" : ""));
  button.append(label);
  const unread = state.conversations.get(entry.key)?.unread ?? 0;
  if (unread > 0) {
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.textContent = String(unread);
    badge.setAttribute("aria-label", `${unread} unread`);
    button.append(badge);
  }
  return button;
}

function renderConversation(): void {
  const conv = state.selected === undefined ? undefined : state.conversations.get(state.selected);
  const gone = conv !== undefined && !state.listed.has(conv.key);
  const member = conv?.type === "group" && state.members.has(conv.name);
  const goneWords = conv?.type === "group" ? " · no longer exists" : " · offline";
  ui.title.textContent = conv === undefined ? "Pick a user or group" : `${conv.type === "group" ? "#" : "@"}${conv.name}${gone ? goneWords : ""}`;
  ui.leaveGroup.hidden = !member;
  ui.joinHere.hidden = conv?.type !== "group" || member || gone;
  const names = member ? [...(state.members.get(conv.name) ?? [])].sort() : [];
  ui.members.hidden = names.length === 0;
  ui.members.textContent = `Members: ${names.join(", ")}`;
  ui.text.disabled = ui.send.disabled = conv === undefined || !state.online || gone || (conv.type === "group" && !member);
  // Another conversation, or one read to its end, shows its latest; one
  // scrolled back stays where it was (see conversation-history.ts for older pages).
  const box = ui.messages;
  const follow = box.dataset.key !== state.selected || box.scrollHeight - box.scrollTop - box.clientHeight < 8;
  const scrollTop = box.scrollTop;
  box.dataset.key = state.selected ?? "";
  box.replaceChildren(...lineItems(conv));
  box.scrollTop = follow ? box.scrollHeight : scrollTop;
}

/** The server's time of a message: the time of day, with the date when it was not today. */
function timeElement(date: Date): HTMLTimeElement {
  const time = document.createElement("time");
  time.dateTime = date.toISOString();
  time.textContent = date.toDateString() === new Date().toDateString() ? date.toLocaleTimeString() : date.toLocaleString();
  return time;
}

/** The conversation's lines as list items: a bubble per message, its own on the right, and notes between them. */
function lineItems(conv: Conversation | undefined): HTMLLIElement[] {
  return (conv?.lines ?? []).map((line) => {
    const li = document.createElement("li");
    if ("note" in line) {
      li.className = "note";
      li.textContent = line.note;
      return li;
    }
    const m = line.message;
    li.classList.toggle("mine", m.sender === state.me);
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.append(`${m.sender} · `, timeElement(m.sentAt ? timestampDate(m.sentAt) : new Date()));
    const text = document.createElement("div");
    text.className = "text";
    text.textContent = m.text;
    li.append(meta, text);
    return li;
  });
}
