// An unbounded in-memory adapter for the peer. oidc-provider's built-in development adapter is an
// LRU of 1000 entries, which under load evicts grants and refresh tokens (the refresh chains then
// fail with invalid_grant); oauth-server --memory keeps everything too, so this is the same work.
const store = new Map();
const grants = new Map();

export default class MemoryAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload) {
    const key = this.key(id);
    store.set(key, payload);
    if (payload.grantId) {
      let keys = grants.get(payload.grantId);
      if (!keys) {
        keys = [];
        grants.set(payload.grantId, keys);
      }
      keys.push(key);
    }
    if (payload.userCode) store.set(`userCode:${payload.userCode}`, id);
    if (payload.uid) store.set(`uid:${payload.uid}`, id);
  }

  async find(id) {
    return store.get(this.key(id));
  }

  async findByUserCode(userCode) {
    const id = store.get(`userCode:${userCode}`);
    return id && this.find(id);
  }

  async findByUid(uid) {
    const id = store.get(`uid:${uid}`);
    return id && this.find(id);
  }

  async consume(id) {
    const payload = store.get(this.key(id));
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    store.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    for (const key of grants.get(grantId) || []) store.delete(key);
    grants.delete(grantId);
  }
}
