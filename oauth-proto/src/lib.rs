//! `oauth-proto`: a sans-IO OAuth 2.0 authorization server engine.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod access_token;
pub mod client;
pub mod client_auth;
pub mod config;
pub mod error;
pub mod flow;
pub mod params;
pub mod pkce;
pub mod random;
pub mod response;
pub mod sasl;
pub mod scope;
pub mod secret;
pub mod store;
