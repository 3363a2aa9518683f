/**
 * The loopback TCP proxy the tests fail connections with. It lives with the
 * client, whose demo cuts one too.
 */
export { startTcpProxy, type TcpProxy } from "../../client/tcp-proxy.js";
