//! The operator's side: the command line, turning its options into a running configuration, and
//! the offline commands on users, clients, keys and the store.
//!
//! [`cli`] parses the command line and [`setup`] turns options and the configuration file into
//! the engine, the store and the signing keys (for `serve` as for every command); the commands
//! ([`user`], [`client`]) run over [`users`] and [`clients`], the key commands over `keys` (the
//! key files, or with PostgreSQL the database's keys; also read at start-up), and
//! `db export`/`db import` over `transfer`. None of it runs while a request is served, and all of
//! it is written against the store contract, so it is kept apart from the HTTP server
//! ([`crate::http`]) and tested on a memory store. The modules the integration tests drive
//! ([`cli`], [`setup`], [`users`], [`clients`]) are public.

pub mod cli;
pub mod clients;
mod commands;
pub mod consents;
pub(crate) mod keys;
pub mod setup;
pub(crate) mod transfer;
pub mod users;

pub use commands::{client, user};
