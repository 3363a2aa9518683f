/**
 * A configuration the server cannot run with: a bad flag or variable, a port
 * already in use, a Redis that cannot be reached. Its message is one line
 * that names the flag and the value (see settingLabel); main prints it and
 * exits 2.
 */
export class ConfigError extends Error {
  override name = "ConfigError";
}
