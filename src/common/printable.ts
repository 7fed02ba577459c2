/* eslint-disable no-control-regex -- matching control characters is the point */
/** CSI: colours, cursor moves, erasing (ESC [ or its one-byte form, parameters, a final byte). */
const CSI = /(?:\u001b\[|\u009b)[\u0030-\u003f]*[\u0020-\u002f]*[\u0040-\u007e]/;
/**
 * OSC, DCS, SOS, PM and APC up to their terminator: window titles, hyperlinks, clipboard writes. The body
 * stops at the next introducer, so the scan stays linear on hostile text.
 */
const STRING =
  /(?:\u001b[\]PX^_]|[\u0090\u0098\u009d-\u009f])[^\u0007\u001b\u0090\u0098\u009b-\u009f]*(?:\u0007|\u001b\\|\u009c)/;
/** Two-byte escapes and charset switches (ESC c resets the terminal). */
const ESCAPE = /\u001b[\u0020-\u002f]*[\u0030-\u007e]/;
const ESCAPE_SEQUENCE = new RegExp([CSI, STRING, ESCAPE].map((r) => r.source).join('|'), 'g');
/** C0 and C1 controls, DEL, and the bidirectional embeddings, overrides and isolates ("Trojan Source"). */
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
const CONTROLS_BUT_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
/* eslint-enable no-control-regex */

/**
 * Security: text from another program (an upstream's names, descriptions, errors) as Bastion shows it to a
 * terminal, a report or a client: without escape sequences or control characters that could rewrite what the
 * reader sees. One-line text gets its line breaks and tabs as spaces; with `keepLines` newlines and tabs stay
 * (CRLF becomes LF, and a lone CR goes: it would let a line overwrite itself).
 */
export function printable(text: string, options: { keepLines?: boolean } = {}): string {
  const plain = text.replace(ESCAPE_SEQUENCE, '');
  if (options.keepLines) return plain.replace(/\r\n/g, '\n').replace(CONTROLS_BUT_LINES, '');
  return plain.replace(/[\t\n\r]+/g, ' ').replace(CONTROLS, '');
}
