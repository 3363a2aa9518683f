import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { type Browser, chromium, type Page } from "playwright-core";
import { createChatClient } from "../../client/chat-client.js";
import { openStream } from "../helpers/chat-stream.js";
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
    await error.filter({ hasText: "ALREADY_EXISTS" }).waitFor();
    assert.match(await error.innerText(), /username "alice" is already online/);
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

  it("says so when the stream ends because the server stops", async () => {
    await t.stop();
    for (const page of [alice, bob]) {
      const status = page.getByRole("status");
      await status.filter({ hasText: "Disconnected" }).waitFor();
      // The reason stays in view while the page retries.
      assert.match(await status.innerText(), /^Disconnected: UNAVAILABLE: the server is shutting down\. Reconnect/);
    }
  });
});
