/**
 * The demo: starts the server and three terminal clients, each in its own
 * process, and walks through every RPC and several error cases. Everything
 * each process prints goes to stdout, prefixed with its name, in the order it
 * arrives. The server holds a dropped session for 5 s: carol's client
 * reaches it through a TCP proxy that the demo cuts, to show a resume. A
 * fourth user joins late and reads the group's history, and a send tried
 * twice with one request_id is delivered once.
 * `npm run --silent demo > logs.txt` captures it. With --tls, the
 * server serves TLS with a throwaway certificate and the clients connect to
 * it over https://, trusting its CA with --ca.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { ChatService } from "../gen/chat/v1/chat_pb.js";
import { type CliProcess, spawnCliProcess } from "../test/helpers/cli-process.js";
import { listeningPort } from "../test/helpers/listening-port.js";
import { startTcpProxy } from "../test/helpers/tcp-proxy.js";
import { createDevCa } from "./dev-ca.js";
import { createAuthorizationInterceptor } from "./sdk/authorization-interceptor.js";
import { describeError } from "./sdk/describe-error.js";

const serverMain = fileURLToPath(new URL("../server/main.ts", import.meta.url));
const show = (who: string, line: string) => process.stdout.write(`${who.padEnd(6)} | ${line}\n`);
const step = (text: string) => show("demo", `--- ${text}`);

// --tls: a CA and certificate made for this run, removed at the end.
const tls = process.argv.includes("--tls") ? createDevCa(mkdtempSync(join(tmpdir(), "chat-demo-"))) : undefined;
const tlsArgs = tls === undefined ? [] : ["--tls-cert", tls.certFile, "--tls-key", tls.keyFile];
const server = spawn(process.execPath, ["--import", "tsx", serverMain, "--port", "0", "--web-port", "0", "--resume-grace-ms", "5000", ...tlsArgs], {
  stdio: ["ignore", "pipe", "pipe"],
});
const serverExit = new Promise<number | null>((resolve) => server.on("exit", (code) => resolve(code)));
const port = await new Promise<number>((resolve, reject) => {
  createInterface({ input: server.stdout }).on("line", (line) => {
    show("server", line);
    const port = listeningPort(line);
    if (port !== undefined) resolve(port);
  });
  createInterface({ input: server.stderr }).on("line", (line) => show("server", line));
  server.once("exit", () => reject(new Error("the server exited before listening")));
});
const url = `${tls === undefined ? "http" : "https"}://127.0.0.1:${port}`;
const caArgs = tls === undefined ? [] : ["--ca", tls.caFile];

// The proxy forwards bytes as they are, TLS included: the client still talks to the server.
const proxy = await startTcpProxy(port);
const proxiedUrl = `${tls === undefined ? "http" : "https"}://127.0.0.1:${proxy.port}`;

const start = (name: string, label = name, serverUrl = url) => spawnCliProcess(name, serverUrl, (line) => show(label, line), caArgs);
/** Types a command as the client and waits for the line that answers it. */
async function say(client: CliProcess, command: string, answer: RegExp, ...others: [CliProcess, RegExp][]) {
  const marks = [client, ...others.map(([c]) => c)].map((c) => c.lines.length);
  show(client.username, `> ${command.length > 60 ? `${command.slice(0, 40)}… (${command.length} characters)` : command}`);
  client.send(command);
  await client.waitFor(answer, { after: marks[0] });
  await Promise.all(others.map(([c, pattern], i) => c.waitFor(pattern, { after: marks[i + 1] })));
}

try {
  step("three users connect (carol through a TCP proxy, which the demo cuts later)");
  const alice = start("alice");
  await alice.waitFor(/^\* connected/);
  const bob = start("bob");
  await bob.waitFor(/^\* connected/);
  const carol = start("carol", "carol", proxiedUrl);
  await carol.waitFor(/^\* connected/);
  await say(alice, "/list", /^\* 3 channels/);

  step("a group: create, join, talk; members see who joins");
  await say(alice, "/create team", /^\* created group/);
  await say(bob, "/join team", /^\* joined/, [alice, /^\* bob joined #team$/]);
  await say(carol, "/join team", /^\* joined/, [alice, /^\* carol joined #team$/], [bob, /^\* carol joined #team$/]);
  await say(bob, "/send team hi team, bob here", /#team <bob> hi team/, [alice, /#team <bob>/], [carol, /#team <bob>/]);
  await say(alice, "/who team", /^\* #team: /);
  await say(alice, "/list", /^\* 4 channels/);

  step("direct messages, and a current channel for plain lines");
  await say(carol, "/to alice", /^\* sending to alice/);
  await say(carol, "hello alice, this is carol", /^\* sent to alice/, [alice, /@alice <carol> hello alice/]);
  await say(alice, "/send carol hi carol!", /^\* sent to carol/, [carol, /@carol <alice> hi carol!/]);
  await say(alice, "/send alice a note to myself", /@alice <alice> a note to myself/);

  step("errors: each prints one line, and the client goes on");
  await say(bob, "/create team", /^! ALREADY_EXISTS/);
  await say(bob, "/create carol", /^! ALREADY_EXISTS/);
  await say(carol, "/send nobody are you there?", /^! NOT_FOUND/);
  await say(carol, "/join no*such*group", /^! INVALID_ARGUMENT/);
  await say(bob, "/join team", /^! ALREADY_EXISTS/);
  await say(bob, "/leave ghosts", /^! NOT_FOUND/);
  await say(bob, "/leave team", /^\* left #team/, [alice, /^\* bob left #team$/], [carol, /^\* bob left #team$/]);
  await say(bob, "/leave team", /^! FAILED_PRECONDITION/);
  await say(bob, "/send team can I still post?", /^! PERMISSION_DENIED/);
  await say(bob, "/who team", /^! PERMISSION_DENIED/);
  await say(bob, `/send alice ${"x".repeat(4097)}`, /^! INVALID_ARGUMENT/);
  const impostor = start("alice", "alice2");
  const impostorCode = await impostor.end();
  show("demo", `the second client named alice exited with code ${impostorCode}`);
  try {
    const nodeOptions = tls === undefined ? {} : { nodeOptions: { ca: readFileSync(tls.caFile) } };
    await createClient(ChatService, createGrpcTransport({ baseUrl: url, ...nodeOptions })).listChannels({});
  } catch (error) {
    show("demo", `ListChannels without an authorization header: ${describeError(error)}`);
    if (ConnectError.from(error).code !== Code.Unauthenticated) throw error;
  }

  await showHistory(carol);
  await showRetriedSend(alice);
  await showResume(alice, carol);

  step("a user who quits leaves its groups; the last member out deletes the group");
  await say(bob, "/join team", /^\* joined/, [alice, /^\* bob joined #team$/], [carol, /^\* bob joined #team$/]);
  const marks = [alice.lines.length, carol.lines.length];
  await say(bob, "/quit", /^$/).catch(() => undefined);
  show("demo", `bob exited with code ${await bob.end()}`);
  await Promise.all([alice.waitFor(/^\* bob left #team \(disconnected\)$/, { after: marks[0] }), carol.waitFor(/^\* bob left/, { after: marks[1] })]);
  await say(alice, "/leave team", /^\* left #team/, [carol, /^\* alice left #team$/]);
  await say(carol, "/leave team", /^\* left #team/);
  await say(alice, "/list", /^\* 2 channels/);

  step("the server shuts down (SIGTERM): open streams end with UNAVAILABLE; the clients try to resume for the 5 s grace, then give up");
  server.kill("SIGTERM");
  await Promise.all([alice.waitFor(/^\* stream ended/), carol.waitFor(/^\* stream ended/)]);
  const codes = await Promise.all([alice.end(), carol.end()]);
  show("demo", `alice and carol exited with codes ${codes.join(" and ")}`);
  show("demo", `the server exited with code ${await serverExit}`);
} catch (error) {
  show("demo", `FAILED: ${error instanceof Error ? error.message : String(error)}`);
  server.kill("SIGKILL");
  process.exitCode = 1;
} finally {
  await proxy.close();
  if (tls !== undefined) rmSync(tls.dir, { recursive: true, force: true });
}

/**
 * A user who joins late reads what the group said before with /join
 * (ListMessages), and /history shows a direct conversation, both ways.
 */
async function showHistory(carol: CliProcess): Promise<void> {
  step("history: dave connects late, and /join shows him what #team said before (ListMessages)");
  const dave = start("dave");
  await dave.waitFor(/^\* connected/);
  await say(dave, "/join team", /^ {2}.*#team <bob> hi team, bob here$/);
  await say(dave, "/quit", /^$/).catch(() => undefined);
  show("demo", `dave exited with code ${await dave.end()}`);
  step("/history [n]: the last messages of the current channel, here carol's direct messages with alice");
  await say(carol, "/history 5", /^ {2}.*@carol <alice> hi carol!$/);
}

/**
 * A send whose answer was lost is tried again with the same request_id:
 * the server answers with the first try's message and delivers nothing
 * again. The demo makes both tries itself, as bob (a live user, named in
 * the authorization header), and alice gets the message once.
 */
async function showRetriedSend(alice: CliProcess): Promise<void> {
  step("a send tried twice with one request_id (as a client does after a timeout) is delivered once");
  const nodeOptions = tls === undefined ? {} : { nodeOptions: { ca: readFileSync(tls.caFile) } };
  const asBob = createClient(ChatService, createGrpcTransport({ baseUrl: url, interceptors: [createAuthorizationInterceptor("bob")], ...nodeOptions }));
  const request = { channel: "alice", text: "sent once, though tried twice", requestId: "demo-retry-1" };
  const mark = alice.lines.length;
  const first = await asBob.sendMessage(request);
  const second = await asBob.sendMessage(request);
  show("demo", `bob's two tries with request_id ${request.requestId} were answered with message ids ${first.message?.id} and ${second.message?.id}`);
  await alice.waitFor(/@alice <bob> sent once, though tried twice$/, { after: mark });
  // Time enough for a second delivery to show, were there one.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const got = alice.lines.slice(mark).filter((line) => line.endsWith("sent once, though tried twice")).length;
  show("demo", `alice got it ${got === 1 ? "once" : `${got} times`}`);
  if (got !== 1 || first.message?.id !== second.message?.id) throw new Error("the retried send was not delivered exactly once");
  try {
    await asBob.sendMessage({ ...request, text: "another text" });
  } catch (error) {
    show("demo", `the same request_id with another text: ${describeError(error)}`);
    if (ConnectError.from(error).code !== Code.InvalidArgument) throw error;
  }
}

/**
 * Cuts carol's connection for a while: the server holds her session, alice
 * writes to her meanwhile, and once the network is back her client resumes
 * the session and gets what she missed, once.
 */
async function showResume(alice: CliProcess, carol: CliProcess): Promise<void> {
  step("carol's connection drops: the server holds her session for the grace, and her client resumes it");
  const mark = carol.lines.length;
  show("demo", "the proxy resets carol's connection and refuses new ones");
  proxy.cut();
  await carol.waitFor(/^\* connection lost/, { after: mark });
  await say(alice, "/send team carol, are you there?", /#team <alice> carol, are you there\?/);
  await say(alice, "/send carol ping me when you are back", /^\* sent to carol/);
  show("demo", "the proxy carries connections again");
  proxy.restore();
  await carol.waitFor(/^\* resumed/, { after: mark });
  await carol.waitFor(/@carol <alice> ping me when you are back/, { after: mark });
  const missed = carol.lines.slice(mark).filter((line) => / <alice> (carol, are you there\?|ping me when you are back)$/.test(line));
  show("demo", `carol got the ${missed.length} messages she missed, each once`);
  if (missed.length !== 2) throw new Error(`carol got ${missed.length} missed messages, not 2`);
  await say(carol, "/send alice back!", /^\* sent to alice/, [alice, /@alice <carol> back!/]);
  await say(carol, "/who team", /^\* #team: alice, carol$/);
}
