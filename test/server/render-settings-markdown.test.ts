import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { renderSettingsMarkdown } from "../../server/ops/render-settings-markdown.js";
import { serverSettings, settingDefault, settingEntries, settingGroups } from "../../server/ops/server-settings.js";

/** The rows of the Markdown table under each heading of the text, split into cells. */
function tablesOf(markdown: string): Map<string, string[][]> {
  const tables = new Map<string, string[][]>();
  let rows: string[][] = [];
  for (const line of markdown.split("\n")) {
    const heading = /^#+ (.*)$/.exec(line);
    if (heading) {
      rows = [];
      tables.set(heading[1] ?? "", rows);
    } else if (line.startsWith("| ")) rows.push(line.slice(2, -2).split(" | "));
  }
  return tables;
}

describe("the settings as Markdown", () => {
  const markdown = renderSettingsMarkdown();
  const tables = tablesOf(markdown);

  it("has a table per topic, in the order of --help", () => {
    assert.deepEqual([...tables.keys()], Object.values(settingGroups));
    assert.match(markdown, /^### Server\n\n\| Flag \| Variable \| Default \| Meaning \|\n\| --- \| --- \| --- \| --- \|\n/);
    assert.match(renderSettingsMarkdown(2), /^## Server\n/);
  });

  it("has one row per flag, under its topic, with its variable, its default and its meaning", () => {
    const rows = [...tables.values()].flatMap((table) => table.slice(2));
    const flags = settingEntries.flatMap(([, setting]) => ("unsetBy" in setting && setting.unsetBy ? [setting.flag, setting.unsetBy.flag] : [setting.flag]));
    assert.deepEqual(rows.map(([flag]) => flag).toSorted(), flags.map((flag) => `\`${flag}\``).toSorted());
    const rowOf = (flag: string) => rows.find(([cell]) => cell === `\`${flag}\``);
    for (const [key, setting] of settingEntries) {
      const table = tables.get(settingGroups[setting.group]) ?? [];
      const row = table.find(([flag]) => flag === `\`${setting.flag}\``);
      assert.ok(row, `${key} is under ${settingGroups[setting.group]}`);
      if (!("env" in setting)) {
        assert.deepEqual(row, [`\`${setting.flag}\``, "", `${setting.flag.slice("--no-".length).replaceAll("-", " ")} on`, setting.doc ?? setting.help], key);
        continue;
      }
      assert.deepEqual(row.slice(0, 3), [`\`${setting.flag}\``, `\`${setting.env}\``, settingDefault(setting)], key);
      assert.ok(row[3]?.startsWith(setting.doc ?? setting.help), key);
      if (setting.unsetBy !== undefined) assert.equal(rowOf(setting.unsetBy.flag)?.[3], setting.unsetBy.doc ?? setting.unsetBy.help, key);
    }
  });

  it("says the defaults as a reader needs them", () => {
    const row = (flag: string) => [...tables.values()].flat().find(([cell]) => cell === `\`${flag}\``);
    assert.deepEqual(row("--port <n>"), ["`--port <n>`", "`PORT`", "`50051`", "TCP port; 0 picks a free one"]);
    // Not this machine's number, which the reader's does not share.
    assert.deepEqual(row("--max-connections <n>")?.[2], "the file-descriptor limit less 256");
    // A setting without a default is off, unless it says what else being unset means.
    assert.deepEqual(row("--metrics-port <n>")?.[2], "off");
    assert.deepEqual(row("--jwt-issuer <iss>")?.[2], "any");
    // A limit that 0 turns off says so.
    assert.deepEqual(row("--send-rate <n>")?.[2], "`0` (off)");
    assert.deepEqual(row("--web-origin <origins>")?.[2], "none");
    // A --no- flag says what is on without it.
    assert.deepEqual(row("--no-web"), ["`--no-web`", "", "web port on", serverSettings.webPort.unsetBy.help]);
    assert.deepEqual(row("--no-presence")?.slice(0, 3), ["`--no-presence`", "", "presence on"]);
    assert.equal(row("--log-level <level>")?.[3], `log level: ${serverSettings.logLevel.choices.join(", ")}`);
  });

  it("means what the documentation says, with its links and codes, where that says more than --help", () => {
    const row = (flag: string) => [...tables.values()].flat().find(([cell]) => cell === `\`${flag}\``);
    assert.equal(row("--redis <url>")?.[3], serverSettings.redis.doc);
    assert.match(row("--redis <url>")?.[3] ?? "", /\[cluster\.md\]\(cluster\.md\)/);
    assert.match(row("--max-groups <n>")?.[3] ?? "", /`RESOURCE_EXHAUSTED`/);
    assert.equal(row("--host <address>")?.[3], serverSettings.host.help);
  });
});

/** Where the generated tables sit in docs/configuration.md, between two markers. */
const docs = fileURLToPath(new URL("../../docs/configuration.md", import.meta.url));
const start = "<!-- settings:start -->";
const end = "<!-- settings:end -->";
const regenerate = "UPDATE_DOCS=1 node --import tsx --test test/server/render-settings-markdown.test.ts";

/** Where two texts first differ, by line, counted from firstLine. */
function firstDifference(documented: string, rendered: string, firstLine: number): string {
  const [a, b] = [documented.split("\n"), rendered.split("\n")];
  const i = a.findIndex((line, index) => line !== b[index]);
  const at = i === -1 ? a.length : i;
  return `line ${firstLine + at}: the docs have ${JSON.stringify(a[at] ?? "(end)")}, the table renders ${JSON.stringify(b[at] ?? "(end)")}`;
}

describe("docs/configuration.md", () => {
  it("has the tables the settings render, exactly, between its markers", (t) => {
    const text = readFileSync(docs, "utf8");
    const from = text.indexOf(start);
    const to = text.indexOf(end);
    assert.ok(
      from !== -1 && to > from && text.indexOf(start, from + 1) === -1 && text.indexOf(end, to + 1) === -1,
      `docs/configuration.md must hold the settings between one ${start} and one ${end}`,
    );
    const documented = text.slice(from + start.length, to);
    // Blank lines around the tables, so that the comments stay blocks of their own.
    const rendered = `\n\n${renderSettingsMarkdown()}\n`;
    if (documented === rendered) return;
    if (process.env.UPDATE_DOCS === "1") {
      writeFileSync(docs, text.slice(0, from + start.length) + rendered + text.slice(to));
      t.diagnostic("rewrote the settings in docs/configuration.md");
      return;
    }
    const firstLine = text.slice(0, from + start.length).split("\n").length;
    assert.fail(
      `docs/configuration.md's settings are not what server/ops/server-settings.ts renders (${firstDifference(documented, rendered, firstLine)}); regenerate them with\n  ${regenerate}`,
    );
  });
});
