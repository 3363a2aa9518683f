import { ConfigError } from "./config-error.js";
import { type ServerConfig, type SettingKey, settingFlag, settingLabel } from "./server-settings.js";

/**
 * Throws a ConfigError for settings that are valid alone but not together:
 * more than one source of token keys, or claims to check and none, a short
 * HMAC secret, half a TLS pair, two ports that are the same, a Redis and a
 * Redis Cluster, and timeouts
 * that would never fire.
 */
export function checkConfig(config: ServerConfig): void {
  checkTokenKeys(config);
  if (config.tlsCert === undefined && config.tlsKey !== undefined) {
    throw new ConfigError(`${settingLabel("tlsKey")} needs ${settingLabel("tlsCert")} too`);
  }
  if (config.tlsCert !== undefined && config.tlsKey === undefined) {
    throw new ConfigError(`${settingLabel("tlsCert")} needs ${settingLabel("tlsKey")} too`);
  }
  checkPorts(config);
  if (config.redis !== undefined && config.redisCluster !== undefined) {
    throw new ConfigError(`${settingFlag("redis")} and ${settingFlag("redisCluster")}: give one Redis or one Redis Cluster, not both`);
  }
  notAbove(config, "webHeadersTimeoutMs", "webRequestTimeoutMs");
  notAbove(config, "pingTimeoutMs", "pingIntervalMs");
}

function checkTokenKeys(config: ServerConfig): void {
  const sources = (["jwtSecret", "jwtPublicKey", "jwksUrl"] as const).filter((key) => config[key] !== undefined);
  if (sources.length > 1) {
    throw new ConfigError(`${sources.map(settingLabel).join(" and ")}: give one source of token keys, not ${sources.length}`);
  }
  if (sources.length === 0 && (config.jwtIssuer !== undefined || config.jwtAudience !== undefined)) {
    throw new ConfigError(
      `${settingFlag("jwtIssuer")} and ${settingFlag("jwtAudience")} need a source of token keys: ${settingFlag("jwtSecret")}, ${settingFlag("jwtPublicKey")} or ${settingFlag("jwksUrl")}`,
    );
  }
  if (config.jwtSecret !== undefined && Buffer.byteLength(config.jwtSecret) < 32) {
    throw new ConfigError(`${settingLabel("jwtSecret")}: use at least 32 bytes, or HS256 tokens can be forged by guessing it`);
  }
}

/** Each port needs one of its own; 0 picks a free one, so it never clashes. */
function checkPorts(config: ServerConfig): void {
  const ports = (["port", "webPort", "metricsPort"] as const).filter((key) => config[key] !== undefined && config[key] !== 0);
  for (const [i, key] of ports.entries()) {
    const other = ports.slice(i + 1).find((k) => config[k] === config[key]);
    if (other !== undefined) throw new ConfigError(`${settingFlag(key)} and ${settingFlag(other)} are both ${config[key]}: each needs a port of its own`);
  }
}

/** Throws unless the timeout of one setting is at most the other's. */
function notAbove(config: ServerConfig, key: SettingKey, limit: SettingKey): void {
  const [value, most] = [config[key], config[limit]];
  if (typeof value === "number" && typeof most === "number" && value > most) {
    throw new ConfigError(`${settingFlag(key)} (${value}) must not exceed ${settingFlag(limit)} (${most})`);
  }
}
