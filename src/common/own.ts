/**
 * `record[key]` when the record itself holds `key`: a key named like an Object.prototype member
 * (`constructor`, `__proto__`, `toString`) finds nothing rather than an inherited function.
 */
export function own<V>(record: Readonly<Record<string, V>>, key: string): V | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}
