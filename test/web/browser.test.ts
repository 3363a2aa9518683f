import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { type Browser, chromium, type Page } from "playwright-core";
import { createChatClient } from "../../client/chat-client.js";
import { openStream } from "../helpers/chat-stream.js";
import { eventually } from "../helpers/eventually.js";
import { startTcpProxy } from "../helpers/tcp-proxy.js";
import { startTestServer, type TestServer } from "../helpers/test-server.js";

// Debian's chromium, which .ci/run installs; no browser is downloaded.
const executablePath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
// The README's picture is refreshed with UPDATE_SCREENSHOT=1; other runs
// write theirs to the temporary folder, leaving the work tree alone.
const screenshot =
  process.env.UPDATE_SCREENSHOT === "1" ? fileURLToPath(new URL("../../docs/chat-page.png", import.meta.url)) : join(tmpdir(), "chat-page.png");

describe("the chat page in Chromium", { timeout: 90_000 }, () => {
  let t: TestServer;
  let browser: Browser;
  let alice: Page;
  let bob: Page;

  async function signIn(name: string): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1000, height: 640 } });
    await page.goto(t.webUrl);
    await page.getByLabel("Username").fill(name);
    await page.getByRole("button", { name: "Connect" }).click();
    return page;
  }

  const channel = (page: Page, label: string) => page.locator("#channels button", { hasText: label });
  const messages = (page: Page) => page.locator("#messages li .text");

  before(async () => {
    t = await startTestServer();
    browser = await chromium.launch({
      executablePath,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
  });
  after(async () => {
    await browser?.close();
    await t?.stop();
  });

  it("lets two pages sign in, make a group and chat live", async () => {
    alice = await signIn("alice");
    bob = await signIn("bob");
    await assert.doesNotReject(alice.getByRole("status").filter({ hasText: "Connected as alice" }).waitFor());
    await bob.getByRole("status").filter({ hasText: "Connected as bob" }).waitFor();

    await alice.getByLabel("Group", { exact: true }).fill("room");
    await alice.getByRole("button", { name: "Create" }).click();
    await alice.locator("#conversation-title", { hasText: "#room" }).waitFor();
    await channel(bob, "room").waitFor();
    await bob.getByLabel("Group", { exact: true }).fill("room");
    await bob.getByRole("button", { name: "Join" }).click();
    await bob.locator("#conversation-title", { hasText: "#room" }).waitFor();

    await alice.getByLabel("Message", { exact: true }).fill("hello room");
    await alice.getByRole("button", { name: "Send" }).click();
    await bob.locator("#messages li", { hasText: "hello room" }).waitFor();
    assert.match(await bob.locator("#messages li .meta").first().innerText(), /^alice · /);
    await alice.locator("#messages li.mine", { hasText: "hello room" }).waitFor();

    // A direct message lands in its own conversation, counted as unread.
    await channel(bob, "alice").click();
    await bob.getByLabel("Message", { exact: true }).fill("hi alice, just you");
    await bob.getByRole("button", { name: "Send" }).click();
    await bob.locator("#messages li.mine", { hasText: "hi alice, just you" }).waitFor();
    await channel(alice, "bob").locator(".badge", { hasText: "1" }).waitFor();
    await channel(alice, "bob").click();
    assert.deepEqual(await messages(alice).allInnerTexts(), ["hi alice, just you"]);
    await channel(alice, "room").click();
    assert.deepEqual(await messages(alice).allInnerTexts(), ["hello room"]);
  });

  it("shows the error when the name is taken", async () => {
    const page = await browser.newPage();
    await page.goto(t.webUrl);
    await page.getByLabel("Username").fill("alice");
    await page.getByRole("button", { name: "Connect" }).click();
    const error = page.locator("#login-error");
    await error.filter({ hasText: "taken" }).waitFor();
    // Words for people: what is wrong and with which name, and no status code.
    assert.equal(await error.innerText(), 'That name is taken: username "alice" is already online');
    assert.equal(await page.locator("#chat-view").isHidden(), true);
    await page.close();
  });

  it("chats with a gRPC client", async () => {
    const client = createChatClient(t.baseUrl, "terminal");
    const stream = await openStream(client, "terminal");
    await client.sendMessage({ channel: "alice", text: "hello from gRPC" });
    await channel(alice, "terminal").locator(".badge").waitFor();
    await channel(alice, "terminal").click();
    await alice.locator("#messages li", { hasText: "hello from gRPC" }).waitFor();
    await alice.getByLabel("Message", { exact: true }).fill("hello from the page");
    await alice.getByRole("button", { name: "Send" }).click();
    const [got] = await stream.waitForMessages(1);
    assert.deepEqual([got?.sender, got?.text], ["alice", "hello from the page"]);
    await alice.locator("#messages li.mine", { hasText: "hello from the page" }).waitFor();
    // A fuller conversation for the README's screenshot.
    await client.joinGroupChat({ name: "room" });
    await client.sendMessage({ channel: "room", text: "joining from the terminal client over gRPC" });
    await channel(bob, "room").click();
    await bob.getByLabel("Message", { exact: true }).fill("welcome! the page speaks Connect over HTTP/1.1");
    await bob.getByRole("button", { name: "Send" }).click();
    await channel(alice, "room").click();
    await alice.locator("#messages li", { hasText: "welcome!" }).waitFor();
    assert.deepEqual(await messages(alice).allInnerTexts(), [
      "hello room",
      "joining from the terminal client over gRPC",
      "welcome! the page speaks Connect over HTTP/1.1",
    ]);
    await alice.screenshot({ path: screenshot });
    stream.cancel();
  });

  it("shows one error at a time, in words, and clears it after a success", async () => {
    const errors = () => alice.locator("p.error").evaluateAll((lines) => lines.map((line) => line.textContent).filter((text) => text !== ""));
    await channel(alice, "room").click();
    await alice.getByLabel("Group", { exact: true }).fill("room");
    await alice.getByRole("button", { name: "Create" }).click();
    await alice.locator("#group-error", { hasText: "taken" }).waitFor();
    assert.deepEqual(await errors(), ['That name is taken: group "room" already exists']);
    // Too many bytes for the server, though not too many characters for the field.
    await alice.getByLabel("Message", { exact: true }).fill("é".repeat(3000));
    await alice.getByRole("button", { name: "Send" }).click();
    await alice.locator("#send-error", { hasText: "6000" }).waitFor();
    const [sendError, ...others] = await errors();
    assert.deepEqual(others, [], "the group's error went when the send's came");
    assert.doesNotMatch(sendError ?? "", /INVALID_ARGUMENT/);
    assert.match(sendError ?? "", /^[A-Z]/);
    await alice.getByLabel("Message", { exact: true }).fill("short enough");
    await alice.getByRole("button", { name: "Send" }).click();
    await alice.locator("#messages li.mine", { hasText: "short enough" }).waitFor();
    assert.deepEqual(await errors(), []);
  });

  it("draws every bubble as wide as its text, received ones too", async () => {
    await channel(alice, "room").click();
    const bubbles = await alice.locator("#messages li:not(.note)").evaluateAll((items) =>
      items.map((li) => {
        // The widths of the lines of text, not of the blocks that hold them.
        const widths = [".meta", ".text"].map((selector) => {
          const range = li.ownerDocument.createRange();
          range.selectNodeContents(li.querySelector(selector)!);
          return range.getBoundingClientRect().width;
        });
        return { mine: li.classList.contains("mine"), spare: li.getBoundingClientRect().width - Math.max(...widths) };
      }),
    );
    assert.ok(bubbles.some((b) => !b.mine) && bubbles.some((b) => b.mine), JSON.stringify(bubbles));
    // Padding and border, and nothing more.
    for (const bubble of bubbles) assert.ok(bubble.spare < 30, JSON.stringify(bubbles));
  });

  it("has an icon, and asks for nothing the server lacks", async () => {
    const page = await browser.newPage();
    const failures: string[] = [];
    page.on("response", (response) => {
      if (response.status() >= 400) failures.push(`${response.status()} ${response.url()}`);
    });
    page.on("console", (message) => {
      if (message.type() === "error") failures.push(message.text());
    });
    await page.goto(t.webUrl, { waitUntil: "load" });
    const href = await page.locator('link[rel="icon"]').getAttribute("href", { timeout: 1000 });
    const icon = await page.request.get(new URL(href ?? "", t.webUrl).href);
    assert.deepEqual([icon.status(), icon.headers()["content-type"]], [200, "image/svg+xml; charset=utf-8"]);
    // Give a late request (the icon's) time to fail, were it to.
    await page.waitForTimeout(500);
    assert.deepEqual(failures, []);
    await page.close();
  });

  it("follows membership and presence: members, Join or Leave as fits, conversations that are gone", async () => {
    const client = createChatClient(t.baseUrl, "gus");
    const stream = await openStream(client, "gus");
    await client.createGroupChat({ name: "annex" });
    await channel(alice, "annex").click();
    // alice is not in it: Join, no composer, no members shown.
    await alice.getByRole("button", { name: "Join group" }).click();
    await alice.locator("#members", { hasText: "Members: alice, gus" }).waitFor();
    await alice.getByRole("button", { name: "Leave group" }).waitFor();
    await client.sendMessage({ channel: "annex", text: "hi alice" });
    await alice.locator("#messages li", { hasText: "hi alice" }).waitFor();
    await client.leaveGroupChat({ name: "annex" });
    await alice.locator("#messages li.note", { hasText: "gus left" }).waitFor();
    await alice.locator("#members", { hasText: "Members: alice" }).waitFor();
    await alice.getByRole("button", { name: "Leave group" }).click();
    // alice was the last: the group is gone, and its conversation says so.
    await alice.locator("#conversation-title", { hasText: "#annex · no longer exists" }).waitFor();
    assert.equal(await alice.getByLabel("Message", { exact: true }).isDisabled(), true);
    await client.sendMessage({ channel: "alice", text: "bye now" });
    await channel(alice, "gus").click();
    await alice.locator("#messages li", { hasText: "bye now" }).waitFor();
    stream.cancel();
    await alice.locator("#conversation-title", { hasText: "@gus · offline" }).waitFor();
    assert.equal(await alice.locator("#channels button.gone", { hasText: "gus" }).count(), 1);
  });

  it("resumes after the connection is cut under it, keeping its groups and getting what was sent once", async () => {
    const resumable = await startTestServer({ resumeGraceMs: 5000 });
    const proxy = await startTcpProxy(Number(new URL(resumable.webUrl).port));
    try {
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${proxy.port}`);
      await page.getByLabel("Username").fill("erin");
      await page.getByRole("button", { name: "Connect" }).click();
      await page.getByRole("status").filter({ hasText: "Connected as erin" }).waitFor();
      await page.getByLabel("Group", { exact: true }).fill("blip");
      await page.getByRole("button", { name: "Create" }).click();
      await page.getByRole("button", { name: "Leave group" }).waitFor();
      const frank = createChatClient(resumable.baseUrl, "frank");
      const frankStream = await openStream(frank, "frank");
      await frank.joinGroupChat({ name: "blip" });
      await page.locator("#members", { hasText: "Members: erin, frank" }).waitFor();

      proxy.drop();
      await frank.sendMessage({ channel: "blip", text: "sent during the blip" });
      await eventually(() => resumable.logs.some((l) => l.msg === "session closed" && l.user === "erin"), "the server saw erin's stream drop");
      await page.locator("#messages li", { hasText: "sent during the blip" }).waitFor();
      await page
        .getByRole("status")
        .filter({ hasText: /^Connected as erin$/ })
        .waitFor();
      await frank.sendMessage({ channel: "blip", text: "and after it" });
      await page.locator("#messages li", { hasText: "and after it" }).waitFor();
      assert.deepEqual(await messages(page).allInnerTexts(), ["sent during the blip", "and after it"]);
      // The same session: still in the group, whose members never saw erin leave.
      assert.equal(await page.locator("#members").innerText(), "Members: erin, frank");
      assert.ok(
        resumable.logs.some((l) => l.msg === "session opened" && l.user === "erin" && l.resumed === true),
        "the second stream resumed",
      );

      // A reload cannot say goodbye over HTTP/1.1: the page resumes its session rather than find its name held.
      await page.reload();
      await page
        .getByRole("status")
        .filter({ hasText: /^Connected as erin$/ })
        .waitFor();
      await frank.sendMessage({ channel: "blip", text: "after the reload" });
      await channel(page, "blip").click();
      await page.locator("#messages li", { hasText: "after the reload" }).waitFor();
      // What came before the reload is read back from the server's history.
      await page.locator("#messages li", { hasText: "sent during the blip" }).waitFor();
      assert.deepEqual(await messages(page).allInnerTexts(), ["sent during the blip", "and after it", "after the reload"]);
      await page.getByRole("button", { name: "Leave group" }).waitFor();
      assert.equal(resumable.logs.filter((l) => l.msg === "session opened" && l.user === "erin" && l.resumed === true).length, 2);
      frankStream.cancel();
      await page.close();
    } finally {
      await proxy.close();
      await resumable.stop();
    }
  });

  it("reads from history what a resume could not replay", async () => {
    // The server keeps one delivered event for a resume: the rest of what the page missed is lost to it.
    const forgetful = await startTestServer({ resumeGraceMs: 5000, resumeHistory: 1 });
    const proxy = await startTcpProxy(Number(new URL(forgetful.webUrl).port));
    try {
      const lou = createChatClient(forgetful.baseUrl, "lou");
      const louStream = await openStream(lou, "lou");
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${proxy.port}`);
      await page.getByLabel("Username").fill("kim");
      await page.getByRole("button", { name: "Connect" }).click();
      await lou.sendMessage({ channel: "kim", text: "before the cut" });
      await channel(page, "lou").click();
      await page.locator("#messages li", { hasText: "before the cut" }).waitFor();

      // Frozen, the connection takes what the server writes and delivers none of it.
      proxy.freeze();
      for (const n of [1, 2, 3]) await lou.sendMessage({ channel: "kim", text: `while frozen ${n}` });
      await new Promise((resolve) => setTimeout(resolve, 300));
      proxy.cut();
      await page.getByRole("status").filter({ hasText: "Reconnecting" }).waitFor();
      proxy.restore();
      await page
        .getByRole("status")
        .filter({ hasText: /^Connected as kim: \d+ missed$/ })
        .waitFor();
      await page.locator("#messages li", { hasText: "while frozen 1" }).waitFor();
      await page.locator("#messages li", { hasText: "while frozen 3" }).waitFor();
      assert.deepEqual(await messages(page).allInnerTexts(), ["before the cut", "while frozen 1", "while frozen 2", "while frozen 3"]);
      louStream.cancel();
      await page.close();
    } finally {
      await proxy.close();
      await forgetful.stop();
    }
  });

  it("reads a conversation's history when it is opened, older pages on scroll, and again after a reload", async () => {
    // Pages of ten (the server lowers the page's 50), and a grace so that a reload resumes.
    const small = await startTestServer({ listPageSize: 10, resumeGraceMs: 5000 });
    try {
      const hal = createChatClient(small.baseUrl, "hal");
      const halStream = await openStream(hal, "hal");
      await hal.createGroupChat({ name: "log" });
      const sent = [];
      for (let n = 1; n <= 25; n++) sent.push((await hal.sendMessage({ channel: "log", text: `note ${n}` })).message);
      const notes = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `note ${from + i}`);

      // A short window: ten messages overflow the list, so the page reads one page, and more only on scroll.
      const page = await browser.newPage({ viewport: { width: 900, height: 420 } });
      await page.goto(small.webUrl);
      await page.getByLabel("Username").fill("ivy");
      await page.getByRole("button", { name: "Connect" }).click();
      await page.getByLabel("Group", { exact: true }).fill("log");
      await page.getByRole("button", { name: "Join" }).click();
      await page.locator("#messages li", { hasText: "note 25" }).waitFor();
      assert.deepEqual(await messages(page).allInnerTexts(), notes(16, 25));
      // The server's time of each message.
      const last = sent[24]?.sentAt;
      assert.ok(last !== undefined);
      const shown = await page.locator("#messages li", { hasText: "note 25" }).locator("time").getAttribute("datetime");
      assert.equal(shown, timestampDate(last).toISOString());

      const list = page.locator("#messages");
      await list.evaluate((el) => {
        el.scrollTop = 0;
      });
      await page.locator("#messages li .text", { hasText: /^note 6$/ }).waitFor();
      assert.deepEqual(await messages(page).allInnerTexts(), notes(6, 25));
      // The messages in view stay in view: the older ones are above them.
      assert.ok((await list.evaluate((el) => el.scrollTop)) > 0);
      await list.evaluate((el) => {
        el.scrollTop = 0;
      });
      await page.locator("#messages li .text", { hasText: /^note 1$/ }).waitFor();
      assert.deepEqual(await messages(page).allInnerTexts(), notes(1, 25));

      // History comes from the server: a reload shows the conversation as it was.
      await page.reload();
      await page
        .getByRole("status")
        .filter({ hasText: /^Connected as ivy$/ })
        .waitFor();
      await hal.sendMessage({ channel: "log", text: "after the reload" });
      await channel(page, "log").click();
      // The latest page: the message sent since, and those before it.
      await page.locator("#messages li", { hasText: "note 17" }).waitFor();
      await page.locator("#messages li", { hasText: "after the reload" }).waitFor();
      assert.deepEqual(await messages(page).allInnerTexts(), [...notes(17, 25), "after the reload"]);
      halStream.cancel();
      await page.close();
    } finally {
      await small.stop();
    }
  });

  it("says so when the stream ends because the server stops", async () => {
    await t.stop();
    for (const page of [alice, bob]) {
      const status = page.getByRole("status");
      await status.filter({ hasText: "Disconnected" }).waitFor();
      // The reason stays in view while the page retries, in one short line.
      assert.equal(await status.innerText(), "Disconnected: the server is shutting down. Reconnecting…");
    }
  });
});
