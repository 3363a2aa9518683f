import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { renderSettingsMarkdown } from "../../server/ops/render-settings-markdown.js";
import { serverSettings, settingEntries, settingGroups } from "../../server/ops/server-settings.js";

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

  it("has one row per flag, under its topic, with its variable, its default and its help", () => {
    const rows = [...tables.values()].flatMap((table) => table.slice(2));
    const flags = settingEntries.flatMap(([, setting]) => ("unsetBy" in setting && setting.unsetBy ? [setting.flag, setting.unsetBy.flag] : [setting.flag]));
    assert.deepEqual(rows.map(([flag]) => flag).toSorted(), flags.map((flag) => `\`${flag}\``).toSorted());
    for (const [key, setting] of settingEntries) {
      const table = tables.get(settingGroups[setting.group]) ?? [];
      const row = table.find(([flag]) => flag === `\`${setting.flag}\``);
      assert.ok(row, `${key} is under ${settingGroups[setting.group]}`);
      if (!("env" in setting)) {
        assert.deepEqual(row, [`\`${setting.flag}\``, "", "", setting.help]);
        continue;
      }
      const shown = setting.defaultText ?? (setting.default === undefined ? "unset" : `\`${setting.default}\``);
      assert.deepEqual(row.slice(0, 3), [`\`${setting.flag}\``, `\`${setting.env}\``, shown], key);
      assert.ok(row[3]?.startsWith(setting.help), key);
    }
  });

  it("says the defaults as a reader needs them", () => {
    const row = (flag: string) => [...tables.values()].flat().find(([cell]) => cell === `\`${flag}\``);
    assert.deepEqual(row("--port <n>"), ["`--port <n>`", "`PORT`", "`50051`", "TCP port; 0 picks a free one"]);
    // Not this machine's number, which the reader's does not share.
    assert.deepEqual(row("--max-connections <n>")?.[2], "the file-descriptor limit less 256");
    assert.deepEqual(row("--metrics-port <n>")?.[2], "unset");
    assert.deepEqual(row("--web-origin <origins>")?.[2], "none");
    assert.equal(row("--log-level <level>")?.[3], `log level: ${serverSettings.logLevel.choices.join(", ")}`);
  });

  const docs = fileURLToPath(new URL("../../docs/configuration.md", import.meta.url));
  it("is what docs/configuration.md documents, every flag and variable", { skip: !existsSync(docs) && "docs/configuration.md is not written yet" }, () => {
    const text = readFileSync(docs, "utf8");
    for (const [key, setting] of settingEntries) {
      assert.ok(text.includes(setting.flag), `docs/configuration.md does not document ${setting.flag} (${key})`);
      if ("env" in setting) assert.ok(text.includes(setting.env), `docs/configuration.md does not document ${setting.env} (${key})`);
    }
  });
});
