//! Engine configuration: defaults that work with no configuration at all, and validation that
//! refuses nonsense with a message naming the setting.
//!
//! The defaults match what a mail server's OAuth server is expected to do: access tokens for an
//! hour, refresh tokens for 30 days renewed when fewer than 4 days remain, codes for 10 minutes,
//! device user codes for 30 minutes, PKCE with `S256` only, open registration of public (native)
//! clients. Durations are whole seconds. The struct deserializes from TOML or JSON with every field
//! optional; unknown fields are an error so that a typo is not silently ignored.

use serde::{Deserialize, Serialize};

use crate::throttle::ThrottleConfig;

/// Who may register confidential clients dynamically (RFC 7591).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationPolicy {
    /// Anyone.
    Open,
    /// Only callers presenting a configured initial access token.
    InitialAccessToken,
    /// Nobody.
    Off,
}

/// Whose tokens a client may introspect (RFC 7662). Under both, an authenticated client may
/// introspect the tokens issued to itself, and every other token is `{"active":false}` to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntrospectionPolicy {
    /// Every confidential client may introspect every token. Not the default: any client that can
    /// register confidentially could then learn whether tokens it got hold of are alive, and whose
    /// they are. `"default"` in configurations written when this was the default.
    #[serde(alias = "default")]
    AnyConfidentialClient,
    /// The default (RFC 7662 §4: the server restricts which protected resources may introspect):
    /// only confidential clients marked as resource servers (`oauth-server client add
    /// --resource-server`) may introspect every token.
    ResourceServersOnly,
}

/// The initial access tokens of dynamic registration (RFC 7591 §3): bearer secrets, so their
/// `Debug` shows only how many there are, and a configuration can be logged whole.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InitialAccessTokens(pub Vec<String>);

impl InitialAccessTokens {
    /// Whether none is configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The configured tokens.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl From<Vec<String>> for InitialAccessTokens {
    fn from(tokens: Vec<String>) -> Self {
        InitialAccessTokens(tokens)
    }
}

impl std::fmt::Debug for InitialAccessTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{} redacted]", self.0.len())
    }
}

/// Everything the engine can be told. `Config::default()` is a working configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The issuer identifier (RFC 8414): every endpoint URL is derived from it, and it is sent as
    /// `iss` in authorization responses (RFC 9207).
    pub issuer: String,
    /// Access token lifetime.
    pub access_token_ttl_secs: u64,
    /// Refresh token lifetime (sliding: each new refresh token gets the full lifetime).
    pub refresh_token_ttl_secs: u64,
    /// A confidential client gets a new refresh token when the presented one has less than this
    /// left; otherwise the presented one stays valid. Public clients always get a new one.
    pub refresh_renewal_threshold_secs: u64,
    /// For how long after a refresh token was rotated the client may present it again, to retry a
    /// refresh whose answer it lost, as long as it has not used the new token yet: it gets another
    /// new token and the unused one dies. 0 (the default) turns this off: a rotated token presented
    /// again is reuse, and the grant is revoked (RFC 9700 §4.14.2). A window also gives a thief
    /// who presents a stolen, just-rotated token that long to do so undetected, so keep it short.
    pub refresh_reuse_grace_secs: u64,
    /// Authorization code lifetime.
    pub authorization_code_ttl_secs: u64,
    /// Device authorization (user code and device code) lifetime.
    pub device_code_ttl_secs: u64,
    /// Initial device polling interval.
    pub device_poll_interval_secs: u64,
    /// Accept `code_challenge_method=plain` (off: only `S256`).
    pub allow_plain_pkce: bool,
    /// Require PKCE from confidential clients too (OAuth 2.1). Public clients always need it.
    pub require_pkce_for_confidential: bool,
    /// Open registration of public (native) clients.
    pub public_registration: bool,
    /// Who may register confidential clients.
    pub confidential_registration: RegistrationPolicy,
    /// Initial access tokens accepted for registration when the policy asks for one.
    pub initial_access_tokens: InitialAccessTokens,
    /// Which clients may introspect.
    pub introspection: IntrospectionPolicy,
    /// Back-channel logout (OpenID Connect Back-Channel Logout 1.0, see
    /// [`crate::backchannel_logout`]): registration accepts `backchannel_logout_uri` and
    /// discovery advertises it. The embedder delivers the logout tokens, so only one that does
    /// may turn it on (the reference server does, by default). Off by default.
    pub backchannel_logout: bool,
    /// Front-channel logout (OpenID Connect Front-Channel Logout 1.0, see
    /// [`crate::frontchannel_logout`]): registration accepts `frontchannel_logout_uri` and
    /// discovery advertises it. The embedder frames the relying parties' pages when a session
    /// ends, so only one that does may turn it on (the reference server does, by default). Off
    /// by default.
    pub frontchannel_logout: bool,
    /// Scopes the server knows; clients may only be registered with, and request, these.
    pub scopes_supported: Vec<String>,
    /// Scope given to dynamically registered clients that name none (without `offline_access`
    /// for a client that may not refresh).
    pub default_client_scope: String,
    /// Upper bound on redirect URIs per registered client.
    pub max_redirect_uris: usize,
    /// Upper bound on any single string in client metadata, in bytes.
    pub max_metadata_string_len: usize,
    /// Upper bound on everything a registration keeps of its metadata (redirect URIs, scope and
    /// the informative members, measured as their JSON), in bytes. Bounds what one registration
    /// can make the store hold, whatever the per-string, per-list and body limits allow.
    pub max_client_metadata_bytes: usize,
    /// A dynamically registered client that has obtained no token this long after registering is
    /// dropped by the store's purge, so registrations nobody uses do not pile up. Clients added by
    /// an administrator never expire. At least `device_code_ttl_secs`, so that a client may
    /// register and then wait out a whole device authorization.
    pub unused_client_ttl_secs: u64,
    /// Upper bound on request bodies an adapter accepts, in bytes.
    pub max_body_bytes: usize,
    /// The limiter of failed guesses and registrations (the `[throttle]` table; see
    /// [`crate::throttle`]).
    pub throttle: ThrottleConfig,
    /// The protected resources tokens may be issued for (RFC 8707, the `[[resources]]` tables;
    /// see [`crate::resource`]). None by default: tokens then carry no audience, as before.
    pub resources: Vec<crate::resource::ProtectedResource>,
    /// Accept an `https` URL as `client_id`, naming the client's metadata document
    /// (draft-ietf-oauth-client-id-metadata-document; see [`crate::client_id_document`]), and
    /// advertise `client_id_metadata_document_supported`. Off by default: the engine then asks the
    /// driver to fetch documents ([`crate::store::Op::FetchClientDocument`]), so only an embedder
    /// whose driver answers that op may turn it on (the reference server does, by default).
    pub client_id_metadata_documents: bool,
    /// The algorithm of JWT access tokens (RFC 9068, for the clients and resources set to them,
    /// see [`crate::jose::access_token`]): `RS256`, `ES256` or `EdDSA`, which the signing key set
    /// must hold an active key for. Unset (the default): RS256 when the set has an RS256 key,
    /// RFC 9068's mandatory algorithm, and ES256 otherwise.
    pub jwt_access_token_alg: Option<crate::jose::Algorithm>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            issuer: "http://127.0.0.1:8080".to_owned(),
            access_token_ttl_secs: 3600,
            refresh_token_ttl_secs: 30 * 86400,
            refresh_renewal_threshold_secs: 4 * 86400,
            refresh_reuse_grace_secs: 0,
            authorization_code_ttl_secs: 600,
            device_code_ttl_secs: 1800,
            device_poll_interval_secs: 5,
            allow_plain_pkce: false,
            require_pkce_for_confidential: true,
            public_registration: true,
            confidential_registration: RegistrationPolicy::InitialAccessToken,
            initial_access_tokens: InitialAccessTokens::default(),
            introspection: IntrospectionPolicy::ResourceServersOnly,
            backchannel_logout: false,
            frontchannel_logout: false,
            scopes_supported: [
                "openid",
                "email",
                "profile",
                "offline_access",
                "mail",
                "calendar",
                "contacts",
                crate::scope::MAIL,
                crate::scope::CONTACTS,
                crate::scope::CALENDARS,
            ]
            .map(String::from)
            .to_vec(),
            default_client_scope: format!(
                "openid email profile offline_access mail calendar contacts {} {} {}",
                crate::scope::MAIL,
                crate::scope::CONTACTS,
                crate::scope::CALENDARS
            ),
            max_redirect_uris: 10,
            max_metadata_string_len: 2048,
            max_client_metadata_bytes: 8 * 1024,
            unused_client_ttl_secs: 86400,
            max_body_bytes: 64 * 1024,
            throttle: ThrottleConfig::default(),
            resources: Vec::new(),
            client_id_metadata_documents: false,
            jwt_access_token_alg: None,
        }
    }
}

/// A configuration the engine refuses: the setting at fault, as the configuration names it
/// ([`setting`](Self::setting), e.g. `access_token_ttl_secs` or `throttle.window_secs`), so a
/// front end can point at it, and a message saying what is wrong (which names it too, so
/// `Display` alone is a complete sentence).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    setting: &'static str,
    message: String,
}

impl ConfigError {
    /// The setting `setting` is wrong, as `message` says.
    pub fn new(setting: &'static str, message: impl Into<String>) -> Self {
        ConfigError {
            setting,
            message: message.into(),
        }
    }

    /// The setting at fault.
    pub fn setting(&self) -> &'static str {
        self.setting
    }

    /// What is wrong with it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid configuration: {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

fn check(setting: &'static str, ok: bool, msg: impl FnOnce() -> String) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(setting, msg()))
    }
}

fn within(name: &'static str, v: u64, lo: u64, hi: u64) -> Result<(), ConfigError> {
    check(name, (lo..=hi).contains(&v), || {
        format!("{name} is {v}, it must be between {lo} and {hi}")
    })
}

impl Config {
    /// Checks every setting; the first problem found is reported.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let issuer = url::Url::parse(&self.issuer).map_err(|e| {
            ConfigError::new(
                "issuer",
                format!("issuer {:?} is not a URL: {e}", self.issuer),
            )
        })?;
        check(
            "issuer",
            matches!(issuer.scheme(), "https" | "http"),
            || {
                format!(
                    "issuer {:?} must be an https URL (http only for testing)",
                    self.issuer
                )
            },
        )?;
        check(
            "issuer",
            issuer.query().is_none() && issuer.fragment().is_none(),
            || {
                format!(
                    "issuer {:?} must not have a query or fragment (RFC 8414 §2)",
                    self.issuer
                )
            },
        )?;
        check("issuer", issuer.host_str().is_some(), || {
            format!("issuer {:?} has no host", self.issuer)
        })?;
        // RFC 8414 §2 and every endpoint RFC: https only. Plain http is for a server that only its
        // own machine can reach (development, tests), so it is refused for any other host.
        check(
            "issuer",
            issuer.scheme() == "https"
                || matches!(
                    issuer.host(),
                    Some(url::Host::Ipv4(ip)) if ip.is_loopback()
                )
                || matches!(issuer.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
                || issuer.host_str() == Some("localhost"),
            || {
                format!(
                    "issuer {:?} must be an https URL; http is only allowed on a loopback host \
                     (127.0.0.1, [::1], localhost)",
                    self.issuer
                )
            },
        )?;
        within(
            "access_token_ttl_secs",
            self.access_token_ttl_secs,
            60,
            86400,
        )?;
        within(
            "refresh_token_ttl_secs",
            self.refresh_token_ttl_secs,
            300,
            5 * 365 * 86400,
        )?;
        check(
            "refresh_renewal_threshold_secs",
            self.refresh_renewal_threshold_secs < self.refresh_token_ttl_secs,
            || {
                format!(
                "refresh_renewal_threshold_secs ({}) must be less than refresh_token_ttl_secs ({})",
                self.refresh_renewal_threshold_secs, self.refresh_token_ttl_secs
            )
            },
        )?;
        within(
            "refresh_reuse_grace_secs",
            self.refresh_reuse_grace_secs,
            0,
            300,
        )?;
        within(
            "authorization_code_ttl_secs",
            self.authorization_code_ttl_secs,
            10,
            600,
        )?;
        within("device_code_ttl_secs", self.device_code_ttl_secs, 60, 86400)?;
        within(
            "device_poll_interval_secs",
            self.device_poll_interval_secs,
            1,
            60,
        )?;
        for s in &self.scopes_supported {
            check(
                "scopes_supported",
                crate::scope::Scope::parse(s)
                    .map(|p| p.tokens().count() == 1)
                    .unwrap_or(false),
                || format!("scopes_supported entry {s:?} is not a single scope token"),
            )?;
        }
        let default = crate::scope::Scope::parse(&self.default_client_scope).map_err(|_| {
            ConfigError::new(
                "default_client_scope",
                format!(
                    "default_client_scope {:?} is not a valid scope",
                    self.default_client_scope
                ),
            )
        })?;
        let supported = crate::scope::Scope::from_tokens(self.scopes_supported.clone());
        check(
            "default_client_scope",
            default.is_subset_of(&supported),
            || "default_client_scope names scopes missing from scopes_supported".to_owned(),
        )?;
        check(
            "initial_access_tokens",
            self.confidential_registration != RegistrationPolicy::InitialAccessToken
                || self
                    .initial_access_tokens
                    .iter()
                    .all(|t| t.len() >= 16 && crate::bearer::is_b64token(t)),
            || {
                "initial_access_tokens must be at least 16 characters each, of A-Z a-z 0-9 - . _ ~ + / \
                 (they are sent as Authorization: Bearer)"
                    .to_owned()
            },
        )?;
        within("max_redirect_uris", self.max_redirect_uris as u64, 1, 100)?;
        within(
            "max_metadata_string_len",
            self.max_metadata_string_len as u64,
            64,
            65536,
        )?;
        within(
            "max_client_metadata_bytes",
            self.max_client_metadata_bytes as u64,
            1024,
            1024 * 1024,
        )?;
        within(
            "unused_client_ttl_secs",
            self.unused_client_ttl_secs,
            3600,
            365 * 86400,
        )?;
        check(
            "unused_client_ttl_secs",
            self.unused_client_ttl_secs >= self.device_code_ttl_secs,
            || {
                format!(
                    "unused_client_ttl_secs ({}) must be at least device_code_ttl_secs ({}), so a \
                     newly registered client can finish a device authorization",
                    self.unused_client_ttl_secs, self.device_code_ttl_secs
                )
            },
        )?;
        within(
            "max_body_bytes",
            self.max_body_bytes as u64,
            1024,
            16 * 1024 * 1024,
        )?;
        self.throttle.validate()?;
        crate::resource::validate_config(&self.resources, &self.scopes_supported, &self.issuer)?;
        Ok(())
    }

    /// The issuer without a trailing `/`, the base every endpoint URL is built on.
    pub fn issuer_base(&self) -> &str {
        self.issuer.trim_end_matches('/')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_initial_access_tokens() {
        let config = Config {
            initial_access_tokens: vec!["s3cret-initial-access-token".to_owned()].into(),
            ..Config::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("initial_access_tokens: [1 redacted]"),
            "{shown}"
        );
    }

    #[test]
    fn registration_storage_settings_are_validated() {
        let refused = |config: Config| config.validate().unwrap_err().message().to_owned();
        assert!(refused(Config {
            unused_client_ttl_secs: 60,
            ..Config::default()
        })
        .starts_with("unused_client_ttl_secs is 60"));
        assert!(refused(Config {
            unused_client_ttl_secs: 3600,
            device_code_ttl_secs: 7200,
            ..Config::default()
        })
        .contains("must be at least device_code_ttl_secs (7200)"));
        assert!(refused(Config {
            max_client_metadata_bytes: 100,
            ..Config::default()
        })
        .starts_with("max_client_metadata_bytes is 100"));
        let config: Config = serde_json::from_str(
            r#"{"unused_client_ttl_secs":7200,"max_client_metadata_bytes":4096}"#,
        )
        .unwrap();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(
            (
                config.unused_client_ttl_secs,
                config.max_client_metadata_bytes
            ),
            (7200, 4096)
        );
    }

    #[test]
    fn a_refusal_names_its_setting() {
        let setting = |config: Config| config.validate().unwrap_err().setting();
        assert_eq!(
            setting(Config {
                issuer: "ftp://x".to_owned(),
                ..Config::default()
            }),
            "issuer"
        );
        assert_eq!(
            setting(Config {
                access_token_ttl_secs: 1,
                ..Config::default()
            }),
            "access_token_ttl_secs"
        );
        let err = Config {
            throttle: ThrottleConfig {
                window_secs: 0,
                ..ThrottleConfig::default()
            },
            ..Config::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(err.setting(), "throttle.window_secs");
        assert_eq!(
            err.to_string(),
            "invalid configuration: throttle: window_secs is 0, it must be between 1 and 86400"
        );
    }

    #[test]
    fn initial_access_tokens_read_as_a_plain_list() {
        let config: Config =
            serde_json::from_str(r#"{"initial_access_tokens":["0123456789abcdef"]}"#).unwrap();
        assert_eq!(
            config.initial_access_tokens.iter().collect::<Vec<_>>(),
            ["0123456789abcdef"]
        );
    }
}
