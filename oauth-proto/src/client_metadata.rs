//! Client metadata of dynamic registration (RFC 7591 §2): validation, and the JSON echoed back.
//!
//! Everything a client sends about itself is self-asserted (RFC 7591 §5), so every member is checked
//! before anything is stored: redirect URIs (RFC 8252 §7 and RFC 9700 §2.1: `https`, `http` only on
//! loopback, private-use schemes only in reverse-domain form, never a fragment), grant and response
//! types (consistent with each other; `implicit` and `password` refused), the authentication method,
//! the scope (within `scopes_supported`), and sizes (URI count, string lengths). Members the engine
//! does not know are dropped (RFC 7591 §2); known informative ones (`client_name`, `logo_uri`,
//! `contacts`, their `#language` variants...) are kept and echoed. A client never gets to mark itself
//! a resource server or choose its `client_id`. Software statements (RFC 7591 §2.3) are not
//! supported: `software_statement` is dropped like any unknown member, so nothing in it is trusted
//! or echoed.
//!
//! The mail clients' public profile (draft-ietf-mailmaint-oauth-public) is honoured: `software_id`
//! and `software_version` are kept and echoed, and `application_type` (OpenID Connect Dynamic
//! Registration §2) is kept and checked against the redirect URIs: a `native` client redirects
//! only to the loopback interface or a private-use scheme (RFC 8252 §7.1, §7.3), a `web` client
//! only to `https`; a mismatch is `invalid_redirect_uri`, another value `invalid_client_metadata`.
//! `post_logout_redirect_uris` (RP-Initiated Logout §3.1) are checked like redirect URIs and
//! kept; logout matches them exactly ([`crate::end_session`]). `backchannel_logout_uri` and
//! `backchannel_logout_session_required` are checked by [`crate::backchannel_logout`], the
//! front-channel ones by [`crate::frontchannel_logout`].
//! Without `application_type` the general rules below apply. Loopback redirects (RFC 8252 §7.3,
//! §8.3) are `http` on the IP literals `127.0.0.1` or `[::1]`: `localhost` is refused, since a
//! name may resolve off the machine and would then be matched exactly (no ephemeral port), and
//! port 0, which nothing listens on, is refused on every redirect URI. `offline_access` asks for a
//! refresh token, so it stays out of the default scope of a client that does not register the
//! `refresh_token` grant, and such a client naming it is `invalid_client_metadata`.
//!
//! What a registration may make the server store is bounded as a whole, not only member by member:
//! at most [`MAX_LANGUAGE_VARIANTS`] `#language` variants of each localizable member, and at most
//! `max_client_metadata_bytes` (8 KB by default) for everything kept, measured as JSON. The
//! per-member limits alone let one anonymous registration store about 60 KB (25 variants of
//! `client_name` at 2048 bytes each, or a `jwks` as large as the body limit), which a stranger
//! could repeat until the store filled; each refusal is `invalid_client_metadata` naming the limit.

use serde_json::{Map, Value};

use crate::client::{AuthMethod, ClientKind, ClientRecord, GrantType};
use crate::config::Config;
use crate::error::{ErrorCode, OAuthError};
use crate::scope::{Scope, OFFLINE_ACCESS};

/// Informative string members that may carry a `#language-tag` variant (RFC 7591 §2.2).
const LOCALIZABLE: [&str; 5] = [
    "client_name",
    "client_uri",
    "logo_uri",
    "tos_uri",
    "policy_uri",
];
/// Plain string members kept and echoed (`application_type` is also checked, in [`validate`]).
const PLAIN: [&str; 3] = ["software_id", "software_version", "application_type"];

/// `application_type` (OpenID Connect Dynamic Registration §2): which redirect URIs a client may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplicationType {
    /// An app on the user's device: loopback `http` or a private-use scheme.
    Native,
    /// A web site: `https` only.
    Web,
}
/// Most `contacts` entries kept.
pub const MAX_CONTACTS: usize = 10;
/// Most `#language-tag` variants of one localizable member (`client_name#de`, `client_name#fr`...),
/// besides its untagged form.
pub const MAX_LANGUAGE_VARIANTS: usize = 8;

/// Metadata that passed validation, ready to become a [`ClientRecord`].
#[derive(Clone, Debug, PartialEq)]
pub struct Validated {
    /// `client_name`, if any (the record falls back to the client id for display).
    pub client_name: Option<String>,
    /// Public for `none`, confidential otherwise.
    pub kind: ClientKind,
    /// `token_endpoint_auth_method` (default `client_secret_basic`).
    pub auth_method: AuthMethod,
    /// Redirect URIs, deduplicated, in request order.
    pub redirect_uris: Vec<String>,
    /// Grant types (default `authorization_code`).
    pub grant_types: Vec<GrantType>,
    /// Scope (default `default_client_scope`).
    pub scope: Scope,
    /// The informative members kept (echoed by reads).
    pub metadata: Map<String, Value>,
}

fn meta(d: impl Into<std::borrow::Cow<'static, str>>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, d)
}

fn redir(d: impl Into<std::borrow::Cow<'static, str>>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidRedirectUri, d)
}

/// A member that is absent or `null` counts as absent.
fn member<'a>(body: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    body.get(name).filter(|v| !v.is_null())
}

/// Characters that print nothing or reorder text: control characters, and the invisible and
/// bidirectional formatting characters with which a self-asserted name could impersonate another
/// on a consent page.
fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

fn string<'a>(
    body: &'a Map<String, Value>,
    name: &str,
    max: usize,
    err: fn(std::borrow::Cow<'static, str>) -> OAuthError,
) -> Result<Option<&'a str>, OAuthError> {
    match member(body, name) {
        None => Ok(None),
        Some(Value::String(s)) if s.len() > max => {
            Err(err(format!("{name} is longer than {max} bytes").into()))
        }
        Some(Value::String(s)) if s.chars().any(is_hidden) => Err(err(format!(
            "{name} contains control or invisible formatting characters"
        )
        .into())),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(err(format!("{name} must be a string").into())),
    }
}

fn strings<'a>(
    body: &'a Map<String, Value>,
    name: &str,
    max_len: usize,
    max_count: usize,
    err: fn(std::borrow::Cow<'static, str>) -> OAuthError,
) -> Result<Option<Vec<&'a str>>, OAuthError> {
    let Some(value) = member(body, name) else {
        return Ok(None);
    };
    let Value::Array(items) = value else {
        return Err(err(format!("{name} must be an array of strings").into()));
    };
    if items.len() > max_count {
        return Err(err(
            format!("{name} has more than {max_count} entries").into()
        ));
    }
    let mut out: Vec<&str> = Vec::with_capacity(items.len());
    for item in items {
        let Value::String(s) = item else {
            return Err(err(format!("{name} must be an array of strings").into()));
        };
        if s.len() > max_len {
            return Err(err(format!(
                "an entry of {name} is longer than {max_len} bytes"
            )
            .into()));
        }
        if !out.contains(&s.as_str()) {
            out.push(s);
        }
    }
    Ok(Some(out))
}

/// The parameters an authorization response adds to the redirect URI (RFC 6749 §4.1.2, §4.1.2.1;
/// RFC 9207).
const RESPONSE_PARAMETERS: [&str; 6] = [
    "code",
    "state",
    "iss",
    "error",
    "error_description",
    "error_uri",
];

/// Checks one redirect URI (RFC 6749 §3.1.2, RFC 8252 §7, RFC 9700 §2.1, RFC 7591 §5).
pub fn check_redirect_uri(uri: &str) -> Result<(), OAuthError> {
    if uri.contains('#') {
        return Err(redir(format!(
            "redirect URI {uri} must not contain a fragment"
        )));
    }
    let url = url::Url::parse(uri)
        .map_err(|_| redir(format!("redirect URI {uri} is not an absolute URI")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(redir(format!(
            "redirect URI {uri} must not contain user information"
        )));
    }
    // The authorization response adds these; kept in the URI they would be sent twice.
    if let Some((name, _)) = url
        .query_pairs()
        .find(|(k, _)| RESPONSE_PARAMETERS.contains(&&**k))
    {
        return Err(redir(format!(
            "redirect URI {uri} must not carry the response parameter {name} in its query"
        )));
    }
    if url.port() == Some(0) {
        return Err(redir(format!(
            "redirect URI {uri} names port 0, on which nothing can listen; a native app \
             registers its loopback redirect without a port and uses any port (RFC 8252 7.3)"
        )));
    }
    match url.scheme() {
        "https" if url.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
        "https" => Err(redir(format!("redirect URI {uri} has no host"))),
        "http" => match url.host_str() {
            Some("127.0.0.1" | "[::1]") => Ok(()),
            Some("localhost") => Err(redir(format!(
                "redirect URI {uri} uses localhost; use the loopback IP literal \
                 http://127.0.0.1 or http://[::1] instead (RFC 8252 8.3), on which any port \
                 is accepted"
            ))),
            _ => Err(redir(format!(
                "redirect URI {uri} uses http, which is only allowed for loopback \
                 (127.0.0.1, [::1]); use https"
            ))),
        },
        scheme if scheme.contains('.') => Ok(()),
        scheme => Err(redir(format!(
            "redirect URI scheme {scheme} is neither https, loopback http, nor a private-use \
             scheme in reverse domain form such as com.example.app (RFC 8252 7.1)"
        ))),
    }
}

/// Checks that a redirect URI (already accepted by [`check_redirect_uri`]) suits the client's
/// `application_type`.
fn check_application_type(uri: &str, app: ApplicationType) -> Result<(), OAuthError> {
    let scheme = uri.split_once(':').map_or("", |(s, _)| s);
    match (app, scheme) {
        (ApplicationType::Web, "https") => Ok(()),
        (ApplicationType::Web, _) => Err(redir(format!(
            "redirect URI {uri} is not https, which a web application must use"
        ))),
        (ApplicationType::Native, "https") => Err(redir(format!(
            "redirect URI {uri} is https, but a native application redirects to the loopback \
             interface (http://127.0.0.1) or a private-use scheme (RFC 8252 7.1, 7.3)"
        ))),
        (ApplicationType::Native, _) => Ok(()),
    }
}

/// Checks an informative URI member: an absolute `https` (or `http`) URL.
fn check_info_uri(name: &str, uri: &str) -> Result<(), OAuthError> {
    match url::Url::parse(uri) {
        Ok(u) if matches!(u.scheme(), "https" | "http") && u.host_str().is_some() => Ok(()),
        _ => Err(meta(format!(
            "{name} must be an absolute http or https URL"
        ))),
    }
}

fn is_language_tag(tag: &str) -> bool {
    (1..=35).contains(&tag.len()) && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Validates a registration (or RFC 7592 update) body against the server's configuration.
pub fn validate(body: &Map<String, Value>, config: &Config) -> Result<Validated, OAuthError> {
    let max = config.max_metadata_string_len;

    let auth_method = match string(body, "token_endpoint_auth_method", max, meta)? {
        None | Some("client_secret_basic") => AuthMethod::ClientSecretBasic,
        Some("client_secret_post") => AuthMethod::ClientSecretPost,
        Some("none") => AuthMethod::None,
        Some(other) => {
            return Err(meta(format!(
                "token_endpoint_auth_method {other} is not supported; use none, \
                 client_secret_basic or client_secret_post"
            )))
        }
    };
    let kind = if auth_method == AuthMethod::None {
        ClientKind::Public
    } else {
        ClientKind::Confidential
    };

    let grant_names =
        strings(body, "grant_types", max, 8, meta)?.unwrap_or_else(|| vec!["authorization_code"]);
    if grant_names.is_empty() {
        return Err(meta("grant_types must not be empty"));
    }
    let mut grant_types = Vec::with_capacity(grant_names.len());
    for name in grant_names {
        let grant = match name {
            "implicit" | "password" => {
                return Err(meta(format!(
                    "grant type {name} is not supported (RFC 9700 forbids it)"
                )))
            }
            _ => GrantType::parse(name)
                .ok_or_else(|| meta(format!("grant type {name} is not supported")))?,
        };
        grant_types.push(grant);
    }
    let has_code_grant = grant_types.contains(&GrantType::AuthorizationCode);
    if let Some(types) = strings(body, "response_types", max, 8, meta)? {
        if let Some(other) = types.iter().find(|t| **t != "code") {
            return Err(meta(format!(
                "response type {other} is not supported; only code is"
            )));
        }
        match (has_code_grant, types.contains(&"code")) {
            (true, false) => {
                return Err(meta(
                    "the grant type authorization_code must be registered along with the \
                     response type code",
                ))
            }
            (false, true) => {
                return Err(meta(
                    "the response type code must be registered along with the grant type \
                     authorization_code",
                ))
            }
            _ => {}
        }
    }
    if grant_types.contains(&GrantType::ClientCredentials) && kind == ClientKind::Public {
        return Err(meta(
            "the grant type client_credentials needs a confidential client \
             (token_endpoint_auth_method client_secret_basic or client_secret_post)",
        ));
    }
    if grant_types.contains(&GrantType::RefreshToken)
        && !has_code_grant
        && !grant_types.contains(&GrantType::DeviceCode)
    {
        return Err(meta(
            "the grant type refresh_token needs authorization_code or the device_code grant",
        ));
    }

    let redirect_uris: Vec<String> =
        match strings(body, "redirect_uris", max, config.max_redirect_uris, redir)? {
            Some(uris) => uris.into_iter().map(str::to_owned).collect(),
            None => Vec::new(),
        };
    if has_code_grant && redirect_uris.is_empty() {
        return Err(redir(
            "redirect_uris is required for the authorization_code grant",
        ));
    }
    let application_type = match string(body, "application_type", max, meta)? {
        None => None,
        Some("native") => Some(ApplicationType::Native),
        Some("web") => Some(ApplicationType::Web),
        Some(other) => {
            return Err(meta(format!(
                "application_type {other} is not supported; use native or web"
            )))
        }
    };
    for uri in &redirect_uris {
        check_redirect_uri(uri)?;
        if let Some(app) = application_type {
            check_application_type(uri, app)?;
        }
    }

    let may_refresh = grant_types.contains(&GrantType::RefreshToken);
    let scope = match string(body, "scope", max, meta)? {
        Some(s) if !s.trim().is_empty() => {
            let scope = Scope::parse(s).map_err(|_| meta("scope is not a valid scope string"))?;
            if !may_refresh && scope.contains(OFFLINE_ACCESS) {
                return Err(meta(
                    "scope offline_access asks for refresh tokens: register the grant type \
                     refresh_token with it",
                ));
            }
            scope
        }
        _ => {
            let default = Scope::parse(&config.default_client_scope)
                .map_err(|_| meta("the server's default scope is invalid"))?;
            match default.without(OFFLINE_ACCESS) {
                Some(narrowed) if !may_refresh => narrowed,
                _ => default,
            }
        }
    };
    let supported = Scope::from_tokens(config.scopes_supported.clone());
    if let Some(extra) = scope.difference(&supported).next() {
        return Err(meta(format!(
            "scope {extra} is not supported by this server"
        )));
    }

    if member(body, "jwks").is_some() && member(body, "jwks_uri").is_some() {
        return Err(meta("jwks and jwks_uri must not both be present"));
    }

    let mut metadata = Map::new();
    let mut variants = [0usize; LOCALIZABLE.len()];
    for (name, value) in body {
        let base = name.split_once('#').map_or(name.as_str(), |(b, _)| b);
        let localized = name.len() != base.len();
        if localized && !(LOCALIZABLE.contains(&base) && is_language_tag(&name[base.len() + 1..])) {
            continue;
        }
        if let Some(i) = LOCALIZABLE
            .iter()
            .position(|m| *m == base)
            .filter(|_| localized)
        {
            variants[i] += 1;
            if variants[i] > MAX_LANGUAGE_VARIANTS {
                return Err(meta(format!(
                    "{base} has more than {MAX_LANGUAGE_VARIANTS} language variants \
                     ({base}#tag); send at most {MAX_LANGUAGE_VARIANTS}"
                )));
            }
        }
        if LOCALIZABLE.contains(&base) {
            if let Some(s) = string(body, name, max, meta)? {
                if base != "client_name" {
                    check_info_uri(name, s)?;
                }
                if !s.is_empty() {
                    metadata.insert(name.clone(), value.clone());
                }
            }
        } else if PLAIN.contains(&base) && string(body, name, max, meta)?.is_some() {
            metadata.insert(name.clone(), value.clone());
        }
    }
    if let Some(contacts) = strings(body, "contacts", max, MAX_CONTACTS, meta)? {
        metadata.insert("contacts".to_owned(), contacts.into());
    }
    if let Some(uri) = string(body, "jwks_uri", max, meta)? {
        if !uri.starts_with("https://") || url::Url::parse(uri).is_err() {
            return Err(meta("jwks_uri must be an https URL"));
        }
        metadata.insert("jwks_uri".to_owned(), uri.into());
    }
    if let Some(jwks) = member(body, "jwks") {
        if !jwks.get("keys").is_some_and(Value::is_array) {
            return Err(meta("jwks must be a JWK Set: an object with a keys array"));
        }
        metadata.insert("jwks".to_owned(), jwks.clone());
    }
    let logout = crate::end_session::POST_LOGOUT_REDIRECT_URIS;
    if let Some(uris) = strings(body, logout, max, config.max_redirect_uris, redir)? {
        // RP-Initiated Logout §3.1: checked like redirect URIs, matched exactly at logout.
        for uri in &uris {
            check_redirect_uri(uri)?;
            if let Some(app) = application_type {
                check_application_type(uri, app)?;
            }
        }
        metadata.insert(logout.to_owned(), uris.into());
    }
    if let Some(alg) = string(body, crate::openid::ID_TOKEN_ALG, max, meta)? {
        // OpenID Connect Registration §2; only asymmetric algorithms (see `crate::jose`).
        let alg = crate::jose::Algorithm::from_name(alg).ok_or_else(|| {
            meta(format!(
                "id_token_signed_response_alg {alg} is not supported; use ES256, RS256 or EdDSA \
                 (never none or a shared-secret HS algorithm)"
            ))
        })?;
        metadata.insert(crate::openid::ID_TOKEN_ALG.to_owned(), alg.name().into());
    }
    crate::backchannel_logout::validate(body, &mut metadata, config.backchannel_logout, max)?;
    crate::frontchannel_logout::validate(
        body,
        &mut metadata,
        &redirect_uris,
        config.frontchannel_logout,
        max,
    )?;
    let kept = stored_size(&redirect_uris, &scope, &metadata);
    if kept > config.max_client_metadata_bytes {
        return Err(meta(format!(
            "the client metadata to store takes {kept} bytes, more than this server keeps for \
             one client ({} bytes: redirect_uris, scope and the informative members, as JSON); \
             send fewer or shorter values",
            config.max_client_metadata_bytes
        )));
    }
    let client_name = metadata
        .get("client_name")
        .and_then(Value::as_str)
        .map(str::to_owned);

    Ok(Validated {
        client_name,
        kind,
        auth_method,
        redirect_uris,
        grant_types,
        scope,
        metadata,
    })
}

/// How many bytes the metadata a registration keeps takes as JSON: the redirect URIs, the scope
/// and the informative members, the parts whose size the client chooses. (The rest of a record is
/// fixed-size: hashes, times, enums.)
fn stored_size(redirect_uris: &[String], scope: &Scope, metadata: &Map<String, Value>) -> usize {
    /// Counts what is written instead of keeping it.
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Strings, arrays and maps of JSON values always serialize.
    let _ = serde_json::to_writer(&mut counter, &(redirect_uris, scope.as_str(), metadata));
    counter.0
}

/// All registered metadata of a client, defaults included (RFC 7591 §3.2.1): the core members
/// from the record, then the informative ones kept at registration.
pub fn describe(client: &ClientRecord) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("redirect_uris".into(), client.redirect_uris.clone().into());
    out.insert(
        "grant_types".into(),
        client
            .grant_types
            .iter()
            .map(|g| g.as_str())
            .collect::<Vec<_>>()
            .into(),
    );
    let response_types: Vec<&str> = if client.allows(GrantType::AuthorizationCode) {
        vec!["code"]
    } else {
        vec![]
    };
    out.insert("response_types".into(), response_types.into());
    out.insert(
        "token_endpoint_auth_method".into(),
        client.auth_method.as_str().into(),
    );
    out.insert("scope".into(), client.scope.to_string().into());
    for (k, v) in &client.metadata {
        out.entry(k.clone()).or_insert_with(|| v.clone());
    }
    out
}
