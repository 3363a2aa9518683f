/** Looks up an element of index.html that the page cannot work without. */
function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`no element #${id}`);
  // The id names an element of index.html whose kind the caller states.
  return found as T;
}

/** The elements of index.html that the page reads and writes. */
export const ui = {
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
