import { Code, ConnectError } from "@connectrpc/connect";

/**
 * connect-node's mapping of HTTP/2 reset codes (node-error.ts, not exported),
 * by the codes' numbers in RFC 9113, section 7, with their names as it
 * spells them. NO_ERROR and STREAM_CLOSED map to no status.
 */
const resetCodes = new Map<number, [string, Code]>([
  [0x1, ["PROTOCOL_ERROR", Code.Internal]],
  [0x2, ["INTERNAL_ERROR", Code.Internal]],
  [0x3, ["FLOW_CONTROL_ERROR", Code.Internal]],
  [0x4, ["SETTINGS_TIMEOUT", Code.Internal]],
  [0x6, ["FRAME_SIZE_ERROR", Code.Internal]],
  [0x7, ["REFUSED_STREAM", Code.Unavailable]],
  [0x8, ["CANCEL", Code.Canceled]],
  [0x9, ["COMPRESSION_ERROR", Code.Internal]],
  [0xa, ["CONNECT_ERROR", Code.Internal]],
  [0xb, ["ENHANCE_YOUR_CALM", Code.ResourceExhausted]],
  [0xc, ["INADEQUATE_SECURITY", Code.PermissionDenied]],
  [0xd, ["HTTP_1_1_REQUIRED", Code.PermissionDenied]],
]);

/** The status of a stream closed with this reset code, as connect-node derives it; undefined for none. */
export function errorFromResetCode(rstCode: number | undefined): ConnectError | undefined {
  const entry = rstCode === undefined ? undefined : resetCodes.get(rstCode);
  return entry === undefined ? undefined : new ConnectError(`http/2 stream closed with error code ${entry[0]} (0x${rstCode!.toString(16)})`, entry[1]);
}
