import { isSwitch, type Setting, type SettingGroup, type SwitchSetting, settingEntries, settingGroups } from "./server-settings.js";

/**
 * Renders the table of settings as Markdown, for the documentation: under a
 * heading per topic, in the order of --help, a table of each flag, its
 * environment variable, its default and what it does. A --no- flag has a
 * row of its own and no variable. headingLevel is the level of the topics'
 * headings (3 by default: ###).
 */
export function renderSettingsMarkdown(headingLevel = 3): string {
  const sections = Object.entries(settingGroups).map(([group, title]) => {
    const rows = settingEntries.filter(([, setting]) => setting.group === (group as SettingGroup)).flatMap(([, setting]) => rowsOf(setting));
    return [`${"#".repeat(headingLevel)} ${title}`, "", "| Flag | Variable | Default | Meaning |", "| --- | --- | --- | --- |", ...rows].join("\n");
  });
  return `${sections.join("\n\n")}\n`;
}

/** The rows of one setting: its own, and one for the --no- flag that unsets it. */
function rowsOf(setting: Setting): string[] {
  if (isSwitch(setting)) return [row(code(setting.flag), "", "", setting.help)];
  const choices = setting.choices === undefined ? "" : `: ${setting.choices.join(", ")}`;
  const rows = [row(code(setting.flag), code(setting.env), defaultOf(setting), `${setting.help}${choices}`)];
  if (setting.unsetBy !== undefined) rows.push(row(code(setting.unsetBy.flag), "", "", setting.unsetBy.help));
  return rows;
}

function defaultOf(setting: Exclude<Setting, SwitchSetting>): string {
  if (setting.defaultText !== undefined) return setting.defaultText;
  if (setting.default === undefined) return "unset";
  return code(String(setting.default));
}

function code(text: string): string {
  return `\`${text}\``;
}

/** A row of a Markdown table; a | in a cell would end it. */
function row(...cells: string[]): string {
  return `| ${cells.map((cell) => cell.replaceAll("|", "\\|")).join(" | ")} |`;
}
