import { isIPv6 } from "node:net";

/**
 * The key one client's limits count under: its IPv4 address (an IPv4-mapped
 * IPv6 address counts as the IPv4 one), or the /64 prefix of its IPv6
 * address, since one host commonly holds a whole /64 and could otherwise
 * count as 2^64 clients.
 */
export function addressKey(address: string | undefined): string {
  if (address === undefined) return "";
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped !== null) return mapped[1]!;
  if (!isIPv6(address)) return address;
  // Expand "::" so that the first four groups are the /64.
  const [head = "", tail = ""] = address.split("::");
  const headGroups = head === "" ? [] : head.split(":");
  const tailGroups = tail === "" ? [] : tail.split(":");
  const groups = address.includes("::") ? [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill("0"), ...tailGroups] : headGroups;
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g, 16).toString(16))
    .join(":")}::/64`;
}
