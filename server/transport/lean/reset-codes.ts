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

/** One error for each reset code, made when first needed. */
const errors = new Map<number, ConnectError>();

/**
 * The status of a stream closed with this reset code, as connect-node derives
 * it; undefined for none. Connect makes a new error, with its stack trace,
 * for every stream its client cancels; one per code serves every call alike,
 * since its message and code are all anyone reads of it.
 */
export function errorFromResetCode(rstCode: number | undefined): ConnectError | undefined {
  if (rstCode === undefined) return undefined;
  let error = errors.get(rstCode);
  if (error === undefined) {
    const entry = resetCodes.get(rstCode);
    if (entry === undefined) return undefined;
    error = new ConnectError(`http/2 stream closed with error code ${entry[0]} (0x${rstCode.toString(16)})`, entry[1]);
    errors.set(rstCode, error);
  }
  return error;
}
