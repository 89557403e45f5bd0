/**
 * Strings the daemon keeps for the life of an object, built flat.
 *
 * A template literal or `+` giving 13 characters or more is a rope in V8: a 32-byte header (with 64-bit
 * pointers, as Node ships) pointing at its parts, which stay alive with it; a nested template is a rope
 * of ropes ("ns/svc:port" held 112 bytes where the flat text takes 40). V8 flattens a rope only when
 * something reads it as a whole, and then keeps the header beside the flat copy if the rope has left
 * the young generation by then. Reading one character flattens it at once, while it is young; the
 * next scavenge then drops the header and points every holder at the flat text.
 * (Array.prototype.join gives a flat string too, at four times the cost of a template.)
 */

/** `s` flattened now (see above); the same string value. */
export function flat(s: string): string {
  s.charCodeAt(0);
  return s;
}
