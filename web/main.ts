/**
 * The chat page: signs in with a username, keeps a Connect stream open, and
 * chats with users and groups through the same ChatService as every other
 * client, over the Connect protocol on HTTP/1.1. It follows the stream's
 * presence and membership events rather than polling: the channel list, the
 * open group's members, and whether the user is in it. When the stream
 * drops, it resumes the session with its token, so a network blip costs
 * neither the groups nor the messages sent meanwhile.
 *
 * This file wires the page's forms to the calls; the state is in
 * chat-state.ts, the drawing in render.ts, the stream and its resumes in
 * chat-connection.ts, the reading of history in conversation-history.ts,
 * the session kept over a reload in saved-session.ts.
 */

import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { maxNameLength, nameInputPattern, nameRuleText } from "../client/sdk/name-rule.js";
import type { ChatClient } from "../client/sdk/resumable-session.js";
import { sendWithRetry } from "../client/sdk/send-with-retry.js";
import { tokenSubject } from "../client/sdk/token-subject.js";
import { ChannelType, type ChatMessage, ChatMessageSchema } from "../gen/chat/v1/chat_pb.js";
import { chatClient, sessionPlace, signIn } from "./chat-connection.js";
import { type Conversation, conversation, receive, state } from "./chat-state.js";
import { loadLatest, loadOlder } from "./conversation-history.js";
import { clearError, showError } from "./error-line.js";
import { type Doing, errorWords, sentence } from "./error-words.js";
import { ui } from "./page-elements.js";
import { render, setStatus } from "./render.js";
import { saveSession, takeSavedSession } from "./saved-session.js";

// The server's own rule for names, so that the forms and the server agree.
for (const input of [ui.username, ui.groupName]) {
  input.pattern = nameInputPattern;
  input.maxLength = maxNameLength;
  input.title = nameRuleText;
}

function select(key: string): void {
  const type = key.startsWith("#") ? "group" : "user";
  state.selected = key;
  const conv = conversation(key, key.slice(1), type);
  conv.unread = 0;
  clearError();
  render();
  ui.text.focus();
  const client = chatClient();
  if (client !== undefined) void loadLatest(client, conv);
}

// Scrolled to the top: the page of history before it.
ui.messages.addEventListener("scroll", () => {
  const conv = openConversation();
  const client = chatClient();
  if (conv !== undefined && client !== undefined && ui.messages.scrollTop < 40) void loadOlder(client, conv);
});

function openConversation(): Conversation | undefined {
  return state.selected === undefined ? undefined : state.conversations.get(state.selected);
}

/** Makes a call for the user: its error shows next to the form that made it, in place of any other; a success clears it. */
async function act(call: (client: ChatClient) => Promise<unknown>, errorLine: HTMLElement, doing: Doing = "other"): Promise<boolean> {
  const client = chatClient();
  if (client === undefined) return false;
  try {
    await call(client);
    clearError();
    return true;
  } catch (error) {
    showError(errorLine, sentence(errorWords(error, doing)));
    return false;
  }
}

// A token names its user: the username field need not be typed again.
ui.token.addEventListener("input", () => {
  const subject = tokenSubject(ui.token.value.trim());
  if (subject !== undefined && ui.username.value.trim() === "") ui.username.value = subject;
});

ui.loginForm.addEventListener("submit", (event) => {
  event.preventDefault();
  clearError();
  setStatus("Connecting…", false);
  void signIn(ui.username.value.trim(), ui.token.value.trim());
});

ui.channels.addEventListener("click", (event) => {
  // The list's buttons carry the key of their channel (see render.ts).
  const button = event.target instanceof Element ? event.target.closest<HTMLButtonElement>("button[data-key]") : null;
  if (button?.dataset.key !== undefined) select(button.dataset.key);
});

function groupAction(call: (client: ChatClient, name: string) => Promise<unknown>, doing: Doing): void {
  const name = ui.groupName.value.trim();
  void act((client) => call(client, name), ui.groupError, doing).then((ok) => {
    if (!ok) return;
    ui.groupName.value = "";
    select(`#${name}`);
  });
}

ui.groupForm.addEventListener("submit", (event) => {
  event.preventDefault();
  groupAction((client, name) => client.createGroupChat({ name }), "naming");
});

ui.joinGroup.addEventListener("click", () => groupAction((client, name) => client.joinGroupChat({ name }), "other"));

ui.leaveGroup.addEventListener("click", () => {
  const conv = openConversation();
  if (conv !== undefined) void act((client) => client.leaveGroupChat({ name: conv.name }), ui.sendError);
});

ui.joinHere.addEventListener("click", () => {
  const conv = openConversation();
  if (conv !== undefined) void act((client) => client.joinGroupChat({ name: conv.name }), ui.sendError);
});

ui.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  const conv = openConversation();
  const text = ui.text.value;
  if (conv === undefined || text === "") return;
  let sent: ChatMessage | undefined;
  // Sent once, though tried again after a timeout or a lost connection (see sendWithRetry).
  const send = async (client: ChatClient) => {
    sent = await sendWithRetry(client, { channel: conv.name, text });
  };
  void act(send, ui.sendError).then((ok) => {
    if (!ok) return;
    ui.text.value = "";
    // The server echoes group messages to their sender, but a direct
    // message goes to its recipient alone: show it here as the server
    // delivered it (a server older than SendMessageResponse.message does
    // not say: then as sent).
    if (conv.type === "user" && conv.name !== state.me) {
      receive(
        sent ??
          create(ChatMessageSchema, {
            id: `sent-${Date.now()}`,
            sender: state.me,
            channel: { name: conv.name, type: ChannelType.USER },
            text,
            sentAt: timestampNow(),
          }),
      );
      render();
    }
  });
});

// A reload, or a tab restored, resumes its session (see saved-session.ts).
window.addEventListener("pagehide", () => {
  const place = sessionPlace();
  if (place === undefined || place.resumeToken === "" || ui.token.value.trim() !== "") return;
  saveSession({ username: state.me, ...place, groups: [...state.members.keys()] });
});
const saved = takeSavedSession();
if (saved !== undefined) {
  ui.username.value = saved.username;
  for (const group of saved.groups) state.members.set(group, new Set([saved.username]));
  setStatus("Reconnecting…", false);
  // A resume the server refused (the grace is over and the name taken) leaves the page signed out: sign in again.
  void signIn(saved.username, "", { resumeToken: saved.resumeToken, received: saved.received, graceMs: saved.graceMs });
}
