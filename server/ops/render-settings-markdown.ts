import { isSwitch, type Setting, settingDefault, settingEntries, settingGroups } from "./server-settings.js";

/**
 * Renders the table of settings as Markdown, for the documentation: under a
 * heading per topic, in the order of --help, a table of each flag, its
 * environment variable, its default and what it does (its doc, or else its
 * help). A --no- flag has a row of its own, with no variable, whose default
 * says what is on unless it is given. headingLevel is the level of the
 * topics' headings (3 by default: ###).
 */
export function renderSettingsMarkdown(headingLevel = 3): string {
  const sections = Object.entries(settingGroups).map(([group, title]) => {
    const rows = settingEntries.filter(([, setting]) => setting.group === group).flatMap(([, setting]) => rowsOf(setting));
    return [`${"#".repeat(headingLevel)} ${title}`, "", "| Flag | Variable | Default | Meaning |", "| --- | --- | --- | --- |", ...rows].join("\n");
  });
  return `${sections.join("\n\n")}\n`;
}

/** The rows of one setting: its own, and one for the --no- flag that unsets it. */
function rowsOf(setting: Setting): string[] {
  if (isSwitch(setting)) return [row(code(setting.flag), "", on(setting.flag), setting.doc ?? setting.help)];
  const choices = setting.choices === undefined ? "" : `: ${setting.choices.join(", ")}`;
  const rows = [row(code(setting.flag), code(setting.env), settingDefault(setting), `${setting.doc ?? setting.help}${choices}`)];
  if (setting.unsetBy !== undefined) rows.push(row(code(setting.unsetBy.flag), "", on(setting.flag), setting.unsetBy.doc ?? setting.unsetBy.help));
  return rows;
}

/**
 * The default of a --no- flag's row: what is on while it is not given, named
 * after the flag of the feature, as "presence on" for --no-presence and "web
 * port on" for --web-port, which --no-web unsets. The flag's own default,
 * not given, would say nothing.
 */
function on(flag: string): string {
  const name = flag.replace(/^--(no-)?/, "").replace(/ <.*>$/, "");
  return `${name.replaceAll("-", " ")} on`;
}

function code(text: string): string {
  return `\`${text}\``;
}

/** A row of a Markdown table; a | in a cell would end it. */
function row(...cells: string[]): string {
  return `| ${cells.map((cell) => cell.replaceAll("|", "\\|")).join(" | ")} |`;
}
