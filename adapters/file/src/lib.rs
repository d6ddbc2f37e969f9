//! A crash-safe file store for the `oauth-proto` engine.
//!
//! # Design
//!
//! The store is a [`MemoryState`](oauth_store_memory::MemoryState), the same logic the in-memory
//! store uses, plus a write-ahead journal of everything that changed it: the mutating ops that
//! changed something, each `apply` call's effects, and purges. `MemoryState` is deterministic, so
//! replaying the journal into an empty state at start-up rebuilds exactly the state the store had;
//! the two stores answer every op identically by construction. All reads are served from memory.
//!
//! - **Durable before acknowledged.** `apply`, `purge` and mutating ops return only once their
//!   journal entry is synced, so a code that was handed out stays taken and a rotated refresh token
//!   stays rotated after a crash. One `apply` call is one entry: after a crash all of its effects are
//!   there or none.
//! - **Group commit.** Callers queue entries; one writer thread writes everything queued as one
//!   frame and syncs once for all of them (see the `log` module). Synchronous callers park until
//!   their own entry is durable, asynchronous ones await a future; no runtime is needed. Mutating
//!   ops that change nothing (a replayed code, a lost swap) write nothing, so retries by an attacker
//!   cost no syncs; they still wait until what they observed is durable.
//! - **Reads** come from memory without IO and may observe a change whose sync is still in flight.
//!   Everything written after such a read is journaled after what it saw, so a crash loses only a
//!   suffix of the history; [`FileStore::sync`] waits until everything seen so far is durable.
//! - **Failures are sticky.** After a failed journal write or sync the store answers every call
//!   with [`FileStoreError::Failed`]; reopening recovers from what is on disk.
//! - **Versioned files.** Every file header records the format version, the version of the records
//!   inside (`oauth_store_memory::RECORD_VERSION`) and the shard count its purge entries refer to,
//!   so files written by another build are read as written (a purge of shard `k` of 16 replays as
//!   that part of the key space), older versions are read, and a newer version is refused by
//!   number (see the `format` module). Files of record version 1, which kept a record per refresh
//!   token, are converted as they load (`oauth_store_memory::v1`: each grant's active token
//!   becomes its refresh family, every token a lookup by hash), so refresh tokens issued before
//!   an upgrade keep working; opening such a directory writes a current snapshot before the
//!   first write, so no new entry ever joins a version 1 journal.
//! - **Checksummed frames.** A torn final frame (the only damage a crash can do) is cut off at
//!   start-up; damage anywhere else stops the start with an error naming the file and byte offset,
//!   and never drops data silently (see the `format` module).
//! - **Compaction.** When the journal outgrows a threshold relative to the last snapshot (or on
//!   [`FileStore::compact`]), a new journal generation starts and the state as of the old one is
//!   written as a snapshot, without stopping writers; the files stay proportional to the live state.
//!   Every step is crash-safe (see the `compact` module).
//! - **Start-up** reads the newest snapshot and the journals after it, verifying and decoding on
//!   one thread while another inserts, and cuts off a torn tail (see the `recover` module).
//! - **Safety.** Owner-only permissions (`0700` directory, `0600` files), an exclusive lock on the
//!   directory, secrets only as the hashes the records already hold, no `unsafe`, and typed errors
//!   instead of panics on bad input.
//!
//! # Use
//!
//! ```no_run
//! use oauth_proto::store::{Effect, Store};
//! use oauth_store_file::{FileStore, Options};
//!
//! let store = FileStore::open("/var/lib/oauth", Options::default())?;
//! store.apply(vec![Effect::ResetCounter { key: "login:alice".into() }])?; // durable on return
//! store.purge(1_700_000_000)?; // drop what expired, periodically
//! store.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod codec;
mod compact;
mod error;
mod format;
mod journal;
mod layout;
mod log;
mod options;
mod pipeline;
mod recover;
mod shared;
mod snapshot;
mod store;
mod writer;

pub use compact::CompactStats;
pub use error::FileStoreError;
pub use format::VERSION as FORMAT_VERSION;
pub use options::Options;
pub use recover::OpenReport;
pub use store::{FileStore, Stats};
