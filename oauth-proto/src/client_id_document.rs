//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document): an `https` URL as
//! `client_id`, naming a JSON document in which the client describes itself.
//!
//! MCP clients and other software that meets many servers it never registered with use them: the
//! server fetches the document when it needs the client and trusts only what the document says.
//! The engine does no IO, so a flow that needs such a client asks the driver for the document
//! ([`Op::FetchClientDocument`](crate::store::Op::FetchClientDocument)), and the driver answers
//! with the bytes it read or a typed [`FetchError`] ([`ClientDocument`]). What the engine checks:
//!
//! | rule | source |
//! |---|---|
//! | the URL: `https`, a host, a path, no fragment, no user name or password, no `.` or `..` segment, at most [`MAX_URL_BYTES`] (the access token's client id bound), written in the canonical form the URL standard gives it (lowercase host, no default port), so one client has one spelling | draft §3 |
//! | the document: at most [`MAX_DOCUMENT_BYTES`], a JSON object | draft §4, §6.6 (5 KB) |
//! | its `client_id` equals the URL exactly (byte for byte) | draft §4.1 |
//! | no shared secret: `client_secret` and `client_secret_expires_at` absent; `token_endpoint_auth_method` absent or `none` (the draft also allows `private_key_jwt`, which this engine does not support; an absent method means `none` here, not RFC 7591's `client_secret_basic`, which a document can never use) | draft §4.1 |
//! | the rest by the rules of dynamic registration ([`client_metadata::validate`]): redirect URIs, `application_type`, grant types, scope within `scopes_supported`, names, sizes | RFC 7591, RFC 8252 |
//!
//! Every failure, of the fetch or of the document, is `invalid_client` with a fixed
//! `error_description` naming the rule (never text from the document or the URL: at the
//! authorization endpoint it is shown before any redirect URI is trusted, on the error page,
//! never sent to a redirect URI).
//!
//! Such a client is never stored: it exists while its document does. Each flow that needs it
//! asks for the document again (an authorization, its decision, the token request), so the
//! driver should cache documents per HTTP caching, as the reference server does, and a changed
//! document takes effect at once. Its tokens carry the URL as their client id and validate,
//! introspect and revoke like any public client's. Like a self-registered client, its
//! authorization errors are never redirected at once ([`ClientRecord::is_self_asserted`]):
//! anyone can publish a document naming any redirect URI.
//!
//! The engine asks for documents only when [`Config::client_id_metadata_documents`] is on (off by
//! default, since only a driver that fetches may turn it on; the reference server does), and then
//! advertises `client_id_metadata_document_supported` in its metadata. Off, an `https` client id
//! is looked up in the store like any other, and is unknown there.
//!
//! [`Config::client_id_metadata_documents`]: crate::config::Config::client_id_metadata_documents

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::client::{AuthMethod, ClientKind, ClientRecord};
use crate::client_metadata;
use crate::config::Config;
use crate::error::{ErrorCode, OAuthError};

/// The largest document accepted, in bytes (the draft's suggested 5 KB). A driver should stop
/// reading past it ([`FetchError::TooLarge`]); the engine refuses a longer body anyway.
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;

/// The longest URL accepted as a client id, in bytes: the longest client id an access token
/// carries.
pub const MAX_URL_BYTES: usize = crate::access_token::MAX_CLIENT_ID;

/// Why the driver could not fetch a document. Each becomes `invalid_client` with its own fixed
/// description.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FetchError {
    /// The host resolves only to addresses the driver does not fetch from (loopback, private,
    /// link-local, multicast or other special-purpose addresses).
    Refused,
    /// The host did not resolve, or the connection or TLS handshake failed.
    Unreachable,
    /// The connection or the whole fetch took too long.
    Timeout,
    /// The URL answered with a redirect (3xx), which is not followed.
    Redirected,
    /// The URL answered with another status than 200.
    Status(u16),
    /// The body is larger than [`MAX_DOCUMENT_BYTES`].
    TooLarge,
    /// The body is not JSON, or not served as JSON (`application/json` or `application/*+json`).
    NotJson,
    /// The driver does not fetch documents (a store asked directly answers this).
    NotFetched,
}

impl FetchError {
    fn describe(self) -> std::borrow::Cow<'static, str> {
        match self {
            FetchError::Refused => "the client's metadata document URL resolves only to addresses \
                this server does not fetch from (loopback, private, link-local or other \
                special-purpose addresses)"
                .into(),
            FetchError::Unreachable => "the client's metadata document could not be fetched \
                (the host did not resolve, or the connection or TLS handshake failed)"
                .into(),
            FetchError::Timeout => "fetching the client's metadata document took too long".into(),
            FetchError::Redirected => "the client's metadata document URL answered with a \
                redirect, which this server does not follow; it must answer 200 itself"
                .into(),
            FetchError::Status(status) => format!(
                "the client's metadata document URL answered with HTTP status {status}, not 200"
            )
            .into(),
            FetchError::TooLarge => "the client's metadata document is larger than 5 KB".into(),
            FetchError::NotJson => "the client's metadata document is not JSON served as \
                application/json"
                .into(),
            FetchError::NotFetched => "this server does not fetch client metadata documents".into(),
        }
    }
}

/// The driver's answer to [`Op::FetchClientDocument`](crate::store::Op::FetchClientDocument):
/// the document's bytes as fetched, or why there are none. The engine checks the bytes itself
/// (see the module docs); a driver only reads them, within [`MAX_DOCUMENT_BYTES`].
///
/// The checked client is kept inside the answer, so the flow's replays check the document once.
#[derive(Clone, Serialize, Deserialize)]
#[serde(from = "Fetched", into = "Fetched")]
pub struct ClientDocument {
    fetched: Fetched,
    checked: OnceLock<Result<ClientRecord, OAuthError>>,
}

/// What was fetched: the serialized form of a [`ClientDocument`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Fetched {
    Body(Vec<u8>),
    Failed(FetchError),
}

impl From<Fetched> for ClientDocument {
    fn from(fetched: Fetched) -> Self {
        ClientDocument {
            fetched,
            checked: OnceLock::new(),
        }
    }
}

impl From<ClientDocument> for Fetched {
    fn from(document: ClientDocument) -> Self {
        document.fetched
    }
}

impl ClientDocument {
    /// The body the URL answered with (status 200, a JSON content type).
    pub fn fetched(body: Vec<u8>) -> Self {
        Fetched::Body(body).into()
    }

    /// The fetch failed.
    pub fn failed(error: FetchError) -> Self {
        Fetched::Failed(error).into()
    }

    /// The body, or why there is none.
    pub fn body(&self) -> Result<&[u8], FetchError> {
        match &self.fetched {
            Fetched::Body(b) => Ok(b),
            Fetched::Failed(e) => Err(*e),
        }
    }

    /// The client the document describes, checked once (see the module docs).
    pub(crate) fn client(
        &self,
        url: &str,
        config: &Config,
        now: u64,
    ) -> Result<&ClientRecord, OAuthError> {
        self.checked
            .get_or_init(|| match &self.fetched {
                Fetched::Body(body) => client_from(url, body, config, now),
                Fetched::Failed(e) => Err(OAuthError::invalid_client(e.describe())),
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl PartialEq for ClientDocument {
    fn eq(&self, other: &Self) -> bool {
        self.fetched == other.fetched
    }
}

impl std::fmt::Debug for ClientDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.fetched {
            Fetched::Body(b) => write!(f, "ClientDocument({} bytes)", b.len()),
            Fetched::Failed(e) => write!(f, "ClientDocument({e:?})"),
        }
    }
}

/// Whether a client id asks for a metadata document: it starts with `https://` (in any case; the
/// URL rules then decide whether it is a good one).
pub fn is_document_url(client_id: &str) -> bool {
    client_id
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

/// Checks a client id URL against the draft's rules (see the module docs); the error says which
/// rule it breaks, in a fixed sentence.
pub fn check_url(client_id: &str) -> Result<(), OAuthError> {
    let refuse = |why: &'static str| Err(OAuthError::invalid_client(why));
    if client_id.len() > MAX_URL_BYTES {
        return refuse("a client_id URL must be at most 255 bytes long");
    }
    if client_id.contains('#') {
        return refuse("a client_id URL must not contain a fragment");
    }
    let Ok(url) = url::Url::parse(client_id) else {
        return refuse("the client_id is not a valid URL");
    };
    if url.scheme() != "https" {
        return refuse("a client_id URL must use https");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return refuse("a client_id URL must not contain a user name or password");
    }
    if url.host().is_none() {
        return refuse("a client_id URL must name a host");
    }
    // The written form, after `https://` and the authority: it must start with the path.
    let rest = client_id
        .get(8..)
        .and_then(|r| r.find(['/', '?']).map(|i| &r[i..]))
        .unwrap_or("");
    if !rest.starts_with('/') {
        return refuse("a client_id URL must contain a path");
    }
    let path = rest.split('?').next().unwrap_or("");
    let dot = |segment: &str| {
        let s = segment.to_ascii_lowercase().replace("%2e", ".");
        s == "." || s == ".."
    };
    if path.split('/').any(dot) {
        return refuse("a client_id URL must not contain . or .. path segments");
    }
    if url.as_str() != client_id {
        return refuse(
            "a client_id URL must be written in canonical form (lowercase scheme and host, no \
             default port, normalized percent-encoding)",
        );
    }
    Ok(())
}

/// The client a fetched document describes, or the rule it breaks.
fn client_from(
    url: &str,
    body: &[u8],
    config: &Config,
    now: u64,
) -> Result<ClientRecord, OAuthError> {
    let refuse = |why: &'static str| Err(OAuthError::invalid_client(why));
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(OAuthError::invalid_client(FetchError::TooLarge.describe()));
    }
    let Ok(mut document) = serde_json::from_slice::<Map<String, Value>>(body) else {
        return refuse("the client's metadata document is not a JSON object");
    };
    if document.get("client_id").and_then(Value::as_str) != Some(url) {
        return refuse(
            "the client_id in the client's metadata document is not exactly the URL it was \
             fetched from",
        );
    }
    if document.contains_key("client_secret") || document.contains_key("client_secret_expires_at") {
        return refuse(
            "a client metadata document must not contain client_secret or \
             client_secret_expires_at: there is no way to share a secret through it",
        );
    }
    match document.get("token_endpoint_auth_method") {
        None | Some(Value::Null) => {
            document.insert("token_endpoint_auth_method".into(), "none".into());
        }
        Some(Value::String(m)) if m == "none" => {}
        Some(_) => {
            return refuse(
                "the client's metadata document must use token_endpoint_auth_method none: a \
                 shared secret cannot be established through it, and this server does not \
                 support private_key_jwt",
            )
        }
    }
    let validated = client_metadata::validate(&document, config).map_err(|e| {
        OAuthError::invalid_client(match e.code {
            ErrorCode::InvalidRedirectUri => {
                "the client's metadata document has redirect_uris this server does not accept \
                 (https; http only on 127.0.0.1 or [::1]; private-use schemes in reverse-domain \
                 form; no fragment; as application_type allows)"
            }
            _ => {
                "the client's metadata document breaks this server's client metadata rules \
                 (grant and response types, scope, application_type, names and sizes, as for \
                 dynamic registration)"
            }
        })
    })?;
    let name = validated
        .client_name
        .clone()
        .or_else(|| url::Url::parse(url).ok()?.host_str().map(str::to_owned))
        .unwrap_or_else(|| url.to_owned());
    Ok(ClientRecord {
        client_id: url.to_owned(),
        name,
        kind: ClientKind::Public,
        secret_hash: None,
        secret_expires_at: None,
        auth_method: AuthMethod::None,
        redirect_uris: validated.redirect_uris,
        grant_types: validated.grant_types,
        scope: validated.scope,
        require_pkce: true,
        resource_server: false,
        registration_token_hash: None,
        created_at: now,
        metadata: validated.metadata,
        unused_expires_at: None,
        access_token_format: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://app.example.com/oauth/client.json";

    fn doc(extra: &str) -> Vec<u8> {
        format!(
            r#"{{"client_id":"{URL}","client_name":"App","redirect_uris":["http://127.0.0.1/cb"]{extra}}}"#
        )
        .into_bytes()
    }

    fn check(body: Vec<u8>) -> Result<ClientRecord, OAuthError> {
        ClientDocument::fetched(body)
            .client(URL, &Config::default(), 7)
            .cloned()
    }

    #[test]
    fn a_good_document_is_a_public_client() {
        let c = check(doc("")).unwrap();
        assert_eq!(c.client_id, URL);
        assert_eq!(c.name, "App");
        assert!(c.is_public() && c.is_self_asserted());
        assert_eq!(c.auth_method, AuthMethod::None);
        assert!(c.registration_token_hash.is_none() && c.unused_expires_at.is_none());
    }

    #[test]
    fn urls_follow_the_draft() {
        for good in [
            URL,
            "https://app.example.com/",
            "https://a.example:8443/c?v=1",
        ] {
            assert!(check_url(good).is_ok(), "{good}");
        }
        for bad in [
            "https://app.example.com",
            "https://app.example.com/a#f",
            "https://user:pw@app.example.com/c",
            "https://app.example.com/a/../c",
            "https://app.example.com/./c",
            "https://app.example.com/a/%2E%2e/c",
            "https://APP.example.com/c",
            "https://app.example.com:443/c",
            "HTTPS://app.example.com/c",
            "https:///c",
            "https://app example.com/c",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        let long = format!("https://app.example.com/{}", "a".repeat(MAX_URL_BYTES));
        assert!(check_url(&long).is_err());
    }

    #[test]
    fn documents_breaking_a_rule_are_invalid_client() {
        let mismatch = br#"{"client_id":"https://other.example.com/c","redirect_uris":["http://127.0.0.1/cb"]}"#;
        let big = doc(&format!(r#","x":"{}""#, "a".repeat(MAX_DOCUMENT_BYTES)));
        for (body, says) in [
            (mismatch.to_vec(), "not exactly the URL"),
            (b"not json".to_vec(), "not a JSON object"),
            (b"[1]".to_vec(), "not a JSON object"),
            (big, "larger than 5 KB"),
            (doc(r#","client_secret":"s""#), "client_secret"),
            (
                doc(r#","token_endpoint_auth_method":"client_secret_basic""#),
                "none",
            ),
            (
                doc(r#","token_endpoint_auth_method":"private_key_jwt""#),
                "private_key_jwt",
            ),
            (doc(r#","scope":"unknown-scope""#), "client metadata rules"),
            (
                br#"{"client_id":"https://app.example.com/oauth/client.json","redirect_uris":["http://evil.example/cb"]}"#.to_vec(),
                "redirect_uris",
            ),
        ] {
            let e = check(body).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidClient);
            assert!(e.description.contains(says), "{}", e.description);
        }
        let e = ClientDocument::failed(FetchError::Redirected)
            .client(URL, &Config::default(), 7)
            .unwrap_err();
        assert!(e.description.contains("redirect"), "{}", e.description);
    }

    #[test]
    fn the_answer_round_trips_and_hides_nothing_it_compares() {
        let d = ClientDocument::fetched(doc(""));
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<ClientDocument>(&json).unwrap(), d);
        assert_ne!(d, ClientDocument::failed(FetchError::Timeout));
    }
}
