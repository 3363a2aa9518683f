/**
 * The rule for user and group names, alone in a module that imports nothing:
 * the chat core enforces it (see names.ts), and the clients apply it before
 * they ask (through client/sdk/name-rule.ts), so that there is one
 * definition and the page's form never drifts from the server.
 */

/** The longest user or group name, in characters (all of them ASCII). */
export const maxNameLength = 32;

/**
 * The rule as an HTML input's pattern attribute (which anchors it at both
 * ends): 1 to 32 ASCII letters, digits, "_", "-" or ".". Names travel in
 * HTTP/2 header values, which are ASCII, hence the narrow alphabet.
 */
export const nameInputPattern = `[A-Za-z0-9_.\\-]{1,${maxNameLength}}`;

/** The rule in words, for a form's hint. */
export const nameRuleText = `1 to ${maxNameLength} letters, digits, _, - or .`;
