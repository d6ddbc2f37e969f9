//! User claims: what the embedder knows about a token's user, for the answers that describe
//! users (introspection's `username` and `email`, RFC 7662 §2.2; OpenID Connect's userinfo
//! reuses them).
//!
//! The engine knows subjects, not users: an embedder authenticates its users from its own
//! directory and hands the engine a subject. So a flow that describes a user asks for its claims
//! as one more question to the driver, [`Op::UserClaims`](crate::store::Op::UserClaims), exactly
//! like a store read, and stays IO-free. The driver answers from wherever its users live: the
//! reference server's directory (`oauth_directory`, which the memory, file and PostgreSQL stores
//! implement, so they answer it themselves), a mail server's account table, LDAP. A store that
//! keeps no users answers `None`, and so does any store for a subject it does not know; the engine
//! then describes the user by its subject alone (`username` is the subject, no `email`).
//!
//! Only tokens with a user ask: a `client_credentials` token's subject is its client, so it is
//! described with no `username` and no `email`, and its claims are never looked up.

use serde::{Deserialize, Serialize};

/// What the embedder knows about one user.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserClaims {
    /// The name the user signs in with (introspection's `username`); usually the subject.
    pub username: String,
    /// The user's email address, if known (introspection's `email`, which Dovecot's default
    /// `username_attribute = email` reads).
    #[serde(default)]
    pub email: Option<String>,
    /// The user's display name, if known (OpenID Connect's `name`, answered at userinfo with
    /// scope `profile`).
    #[serde(default)]
    pub name: Option<String>,
}
