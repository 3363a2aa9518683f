import { Command, Option } from "commander";
import {
  isSwitch,
  type OptInSetting,
  type SettingGroup,
  type SettingKey,
  settingDefault,
  settingEntries,
  settingGroups,
  type ValueSetting,
} from "./server-settings.js";

/** A few command lines, shown at the end of --help. */
const examples = `
Examples:
  # gRPC on a free port, no chat page, a verbose log
  PORT=0 npm start -- --no-web --log-level debug
  # TLS, and at most 20 messages a second from each user
  npm start -- --tls-cert server.pem --tls-key server.key --send-rate 20
  # signed identities: tokens signed with a secret kept out of the command line
  JWT_SECRET=... npm start -- --jwt-issuer https://auth.example.com
  # one node of a cluster, sharing state through Redis
  npm start -- --redis redis://127.0.0.1:6379 --port 50052 --web-port 8081
  # one of several nodes of a cluster on one port (50051), each with a metrics port of its own
  npm start -- --redis redis://127.0.0.1:6379 --reuse-port --metrics-port 9101`;

/** The heading of a group in --help. */
function heading(group: SettingGroup): string {
  return `${settingGroups[group]}:`;
}

/**
 * Creates the command-line program of the server from the table of
 * settings: one option per setting (two for a setting that a --no- flag
 * unsets), grouped by topic in --help, each with its variable and its one
 * default, and a few examples at the end. It reads flags only: parseConfig
 * applies the variables itself, from the environment it is given.
 */
export function createConfigProgram(): Command {
  const program = new Command("chat-server").description("A real-time chat backend spoken over gRPC.");
  const order = Object.keys(settingGroups);
  // Stable: within a group, the settings keep the table's order.
  const sorted = settingEntries.toSorted(([, a], [, b]) => order.indexOf(a.group) - order.indexOf(b.group));
  for (const [key, setting] of sorted) {
    if (isSwitch(setting)) {
      program.addOption(checked(key, new Option(setting.flag, setting.help).helpGroup(heading(setting.group))));
      continue;
    }
    program.addOption(checked(key, valueOption(setting)));
    if (setting.unsetBy !== undefined) program.addOption(new Option(setting.unsetBy.flag, setting.unsetBy.help).helpGroup(heading(setting.group)));
  }
  program.addHelpOption(new Option("-h, --help", "show this help").helpGroup(heading("operations")));
  // Each description says it all (choices, variable, default), in fewer words than commander's own additions.
  program.configureHelp({ optionDescription: (option) => option.description });
  return program.addHelpText("after", examples);
}

/**
 * The option of a setting that takes a value, or of one that its flag alone
 * turns on: commander reads a flag without <value> as true, and must not be
 * given the parser, which is the variable's (it would call it with no text).
 */
function valueOption(setting: ValueSetting<unknown> | OptInSetting): Option {
  const option = new Option(setting.flag, describe(setting)).helpGroup(heading(setting.group));
  // Commander checks choices on the command line with a message of its own; parse checks the variable.
  if (setting.choices !== undefined) option.choices(setting.choices.map(String));
  else if (!option.isBoolean()) option.argParser(setting.parse);
  if (setting.default !== undefined) option.default(setting.default);
  return option;
}

/** A setting's line of --help: what it does, its choices, its variable and its one default. */
function describe(setting: ValueSetting<unknown> | OptInSetting): string {
  const choices = setting.choices === undefined ? "" : `: ${setting.choices.join(", ")}`;
  // The default is said in Markdown, for the documentation; --help is plain text.
  return `${setting.help}${choices} (env ${setting.env}, default ${settingDefault(setting).replaceAll("`", "")})`;
}

/** The option, once it is sure that commander keeps its value under the setting's key, which parseConfig reads. */
function checked(key: SettingKey, option: Option): Option {
  if (option.attributeName() !== key) throw new Error(`setting ${key}: commander names the value of ${option.flags} ${option.attributeName()}`);
  return option;
}
