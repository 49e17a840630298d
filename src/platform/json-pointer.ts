/**
 * JSON Pointers (RFC 6901): the paths TypeBox and Ajv report a value's place in a document with,
 * e.g. `/rules/3/when`. `~1` stands for `/` and `~0` for `~` inside one token.
 */

/** The unescaped tokens of a pointer; the empty pointer (the whole document) has none. */
export function pointerTokens(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((token) => token.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** A member name as one pointer token: `~` and `/` escaped. */
export function pointerToken(name: string): string {
  return name.replace(/~/g, '~0').replace(/\//g, '~1');
}
