import { CommanderError, Option } from "commander";
import { checkConfig } from "./check-config.js";
import { ConfigError } from "./config-error.js";
import { createConfigProgram } from "./create-config-program.js";
import { isSwitch, type ServerConfig, settingEntries } from "./server-settings.js";

/**
 * Reads the configuration from command-line flags, then environment
 * variables, then defaults, in that order of precedence, and checks that the
 * settings go together. Throws a ConfigError naming the flag or variable for
 * a bad or unknown value, and for --help (whose text is the error's message),
 * so that main decides how to exit.
 */
export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv): ServerConfig {
  let help = "";
  const program = createConfigProgram()
    .exitOverride()
    .configureOutput({
      writeOut: (text) => {
        help += text;
      },
      writeErr: () => {},
    })
    .allowExcessArguments(false);
  try {
    program.parse(argv, { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError && error.code === "commander.helpDisplayed") throw new ConfigError(help);
    throw new ConfigError((error instanceof Error ? error.message : String(error)).replace(/^error: /, ""));
  }
  // The variables are read here rather than by commander (which reads
  // process.env), so that tests can pass an environment of their own.
  for (const [key, setting] of settingEntries) {
    if (isSwitch(setting)) continue;
    const value = env[setting.env];
    const source = program.getOptionValueSource(key);
    if (value === undefined || (source !== "default" && source !== undefined)) continue;
    try {
      program.setOptionValueWithSource(key, setting.parse(value), "env");
    } catch (error) {
      throw new ConfigError(`environment variable ${setting.env}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  const config = configOf(program.opts());
  checkConfig(config);
  return config;
}

/** The configuration in commander's values: the settings that have one, less those their --no- flag unsets. */
function configOf(values: Record<string, unknown>): ServerConfig {
  const config: Record<string, unknown> = {};
  for (const [key, setting] of settingEntries) {
    const unset = !isSwitch(setting) && setting.unsetBy !== undefined && values[new Option(setting.unsetBy.flag).attributeName()] === false;
    if (values[key] !== undefined && !unset) config[key] = values[key];
  }
  return config as ServerConfig; // Each value came through its own setting's parser, or is its default.
}
