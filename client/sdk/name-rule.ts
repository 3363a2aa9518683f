/**
 * The server's rule for user and group names, for clients to apply before
 * they ask. It is the one place where client code reaches into server/: the
 * rule has a single definition, which the chat core enforces, in a module
 * that imports nothing (the core must not depend on client code, and the
 * page's bundle must not pull in the server's).
 */
export { maxNameLength, nameInputPattern, nameRuleText } from "../../server/core/name-rule.js";
