//! The store contract against the in-memory store.

use conformance::store_contract::Harness;
use oauth_store_memory::MemoryStore;

fn harness() -> Harness<MemoryStore> {
    Harness {
        fresh: MemoryStore::new,
        len: |s| s.read().len(),
        footprint: |_| None,
    }
}

conformance::store_contract_tests!(harness());
conformance::directory_contract_tests!(harness());
