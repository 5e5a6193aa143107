import { createStore, type UseStore } from 'idb-keyval';

/** Bumped when the stored layout changes; manifests of other versions are reported, not read. */
export const SCHEMA_VERSION = 1;

let store: UseStore | null = null;

/** BaDLoss Lab's own IndexedDB database and object store (not idb-keyval's default one). */
export function labStore(): UseStore {
  return (store ??= createStore('badloss-lab', 'kv'));
}

/** Bytes needed vs free, from navigator.storage.estimate (undefined when unknown). */
export async function freeBytes(): Promise<number | undefined> {
  const est = await globalThis.navigator?.storage?.estimate?.();
  if (!est || est.quota === undefined || est.usage === undefined) return undefined;
  return est.quota - est.usage;
}

/** True for the browser's out-of-space errors, whatever wraps them. */
export function isQuotaError(e: unknown): boolean {
  const name = (e as { name?: string } | null)?.name;
  return (
    name === 'QuotaExceededError' ||
    name === 'NS_ERROR_DOM_QUOTA_REACHED' ||
    (e instanceof Error && /quota/i.test(e.message))
  );
}
