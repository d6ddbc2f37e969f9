//! Conformance suite: RFC vectors, normative requirements, properties and the store contract.

pub mod store_contract;
