// The tablet's outbox in IndexedDB: a command is stored (envelope bytes and all) before the
// page says "sending…", and deleted only when its reply arrives. After a reload, a crash or a
// night without Wi-Fi, the same bytes go out again with the same id; the box de-duplicates.

const DB = 'docket';
const STORE = 'outbox';

function req(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

export class Outbox {
  static async open(scope) {
    const r = indexedDB.open(`${DB}.${scope}`, 1);
    r.onupgradeneeded = () => r.result.createObjectStore(STORE, { keyPath: 'id' });
    const box = new Outbox();
    box.db = await req(r);
    return box;
  }

  async tx(mode, f) {
    const t = this.db.transaction(STORE, mode);
    const result = f(t.objectStore(STORE));
    await new Promise((resolve, reject) => {
      t.oncomplete = resolve;
      t.onerror = () => reject(t.error);
      t.onabort = () => reject(t.error);
    });
    return result;
  }

  /** Stores an entry `{id, bytes, ...}`; resolves once it is committed. */
  put(entry) {
    return this.tx('readwrite', (s) => s.put(entry));
  }

  delete(id) {
    return this.tx('readwrite', (s) => s.delete(id));
  }

  async all() {
    const t = this.db.transaction(STORE, 'readonly');
    const rows = await req(t.objectStore(STORE).getAll());
    return rows.sort((a, b) => a.createdAt - b.createdAt);
  }
}
