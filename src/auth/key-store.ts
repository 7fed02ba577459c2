import { mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { z } from 'zod';
import { BastionError } from '../common/bastion-error.js';
import type { BastionConfig } from '../config/config.schema.js';
import { issueKey } from './api-key.js';
import { isScope, SCOPE_NAMES, type Scope } from './principal.js';

export const keyRecord = z.object({
  id: z.string().regex(/^[0-9a-f]{12}$/),
  client: z.string().min(1),
  scopes: z.array(z.string().refine(isScope, `expected ${SCOPE_NAMES}`)),
  workspace: z.string().min(1).optional(),
  tier: z.string().min(1),
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  created: z.string(),
  revoked: z.string().optional(),
});
const keysFile = z.object({ version: z.literal(1), keys: z.array(keyRecord) });

export type KeyRecord = z.infer<typeof keyRecord>;

export interface NewKey {
  client: string;
  scopes: Scope[];
  workspace?: string;
  tier?: string;
}

export class KeyStoreError extends BastionError {}

/** Where API keys live: the keys file on this machine, or Redis shared by every instance. */
export interface ApiKeyStore {
  /** The record for a key id, as current as the store promises (the file now; Redis within about 1 s). */
  find(id: string): KeyRecord | undefined | Promise<KeyRecord | undefined>;
  list(): KeyRecord[] | Promise<KeyRecord[]>;
  create(spec: NewKey): Promise<{ record: KeyRecord; key: string }>;
  /** Marks a key revoked; false when there is no such key. Revoked records stay, for the audit trail. */
  revoke(id: string): Promise<boolean>;
  close(): Promise<void>;
}

/** A new key and its record, checked; the key itself is returned once and never stored. */
export function newKeyRecord(spec: NewKey): { record: KeyRecord; key: string } {
  if (!/^[A-Za-z0-9._@-]{1,64}$/.test(spec.client)) {
    throw new KeyStoreError(
      'invalid_client',
      'A client name is 1 to 64 letters, digits, dots, dashes, underscores or @.',
    );
  }
  if (spec.scopes.length === 0) throw new KeyStoreError('invalid_scopes', 'Give at least one scope.');
  const issued = issueKey();
  const record: KeyRecord = {
    id: issued.id,
    client: spec.client,
    scopes: [...new Set(spec.scopes)],
    ...(spec.workspace ? { workspace: path.resolve(spec.workspace) } : {}),
    tier: spec.tier ?? 'default',
    hash: issued.hash,
    created: new Date().toISOString(),
  };
  return { record, key: issued.key };
}

/**
 * The API keys, hashed, in one JSON file (mode 0600) replaced atomically on every change. A running server
 * notices changes by the file's identity and mtime, so `bastion keys revoke` takes effect on the next
 * request without a restart.
 */
export class KeyStore implements ApiKeyStore {
  private keys = new Map<string, KeyRecord>();
  private seen = '';

  constructor(readonly file: string) {}

  /** The record for a key id, from the file as it is now. */
  find(id: string): KeyRecord | undefined {
    this.refresh();
    return this.keys.get(id);
  }

  list(): KeyRecord[] {
    this.refresh();
    return [...this.keys.values()];
  }

  async create(spec: NewKey): Promise<{ record: KeyRecord; key: string }> {
    const created = newKeyRecord(spec);
    this.refresh();
    this.keys.set(created.record.id, created.record);
    await this.save();
    return created;
  }

  /** Marks a key revoked; false when there is no such key. Revoked records stay, for the audit trail. */
  async revoke(id: string): Promise<boolean> {
    this.refresh();
    const record = this.keys.get(id);
    if (!record) return false;
    if (!record.revoked) {
      this.keys.set(id, { ...record, revoked: new Date().toISOString() });
      await this.save();
    }
    return true;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  private refresh(): void {
    let stamp: string;
    try {
      const stats = statSync(this.file);
      stamp = `${stats.ino}:${stats.size}:${stats.mtimeMs}`;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw this.unreadable();
      stamp = 'missing';
    }
    if (stamp === this.seen) return;
    this.keys = stamp === 'missing' ? new Map() : this.read();
    this.seen = stamp;
  }

  private read(): Map<string, KeyRecord> {
    let parsed: z.infer<typeof keysFile>;
    try {
      parsed = keysFile.parse(JSON.parse(readFileSync(this.file, 'utf8')));
    } catch {
      throw this.unreadable();
    }
    return new Map(parsed.keys.map((k) => [k.id, k]));
  }

  private async save(): Promise<void> {
    mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
    const data = `${JSON.stringify({ version: 1, keys: [...this.keys.values()] }, null, 2)}\n`;
    await writeFileAtomic(this.file, data, { mode: 0o600 });
    this.seen = '';
  }

  private unreadable(): KeyStoreError {
    return new KeyStoreError(
      'keys_file_unreadable',
      `The keys file ${path.basename(this.file)} cannot be read or is not valid.`,
    );
  }
}

export function keysFilePath(config: BastionConfig): string {
  return path.resolve(config.auth.keysFile ?? path.join(config.dataDir, 'keys.json'));
}
