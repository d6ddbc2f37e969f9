//! Whole SASL exchanges with real access tokens: success with and without SASL-IR, every failure
//! path and its error challenge, the dummy reply, cancel, misuse, lockout accounting, TLS, the
//! default policy's mail-scope and user checks, and the reply text of each mail protocol.

use oauth_proto::access_token::{self, AccessClaims, KeyRing, TokenError, TokenKey};
use oauth_proto::sasl::{
    decode_client_line, decode_initial_response, escape_saslname, ClientInput, Ending,
    ExchangeError, Failure, FailureReason, Mechanism, ParseError, Protocol, SaslExchange,
    SaslPolicy, SaslValidator, StartError, Step,
};
use oauth_proto::scope::Scope;
use oauth_proto::store::{GrantId, NothingRevoked, RevocationView};

const NOW: u64 = 1_700_000_000;
const USER: &str = "user@example.com";
const OIDC: &str = "https://as.example.com/.well-known/openid-configuration";

fn ring() -> KeyRing {
    KeyRing::new(TokenKey::new(1, &[7u8; 32]).unwrap(), vec![]).unwrap()
}

fn claims(subject: &str, scope: &str) -> AccessClaims {
    AccessClaims {
        grant_id: GrantId([3; 16]),
        subject: subject.into(),
        client_id: "mail-client".into(),
        scope: Scope::parse(scope).unwrap(),
        issued_at: NOW - 10,
        expires_at: NOW + 3600,
        credential_version: 0,
        audience: Default::default(),
    }
}

fn token_for(subject: &str) -> String {
    access_token::issue(&ring(), &claims(subject, "mail openid")).unwrap()
}

/// The embedder's validator: the crate's free function with a fixed clock.
fn validator(token: &str) -> Result<AccessClaims, TokenError> {
    access_token::validate(&ring(), token, NOW, &NothingRevoked)
}

fn policy() -> SaslPolicy {
    SaslPolicy {
        openid_configuration: Some(OIDC.into()),
        ..SaslPolicy::default()
    }
}

fn bearer_msg(authzid: Option<&str>, token: &str) -> Vec<u8> {
    let a = authzid
        .map(|a| format!("a={}", escape_saslname(a)))
        .unwrap_or_default();
    format!("n,{a},\x01host=imap.example.com\x01port=993\x01auth=Bearer {token}\x01\x01")
        .into_bytes()
}

fn xoauth2_msg(user: &str, token: &str) -> Vec<u8> {
    format!("user={user}\x01auth=Bearer {token}\x01\x01").into_bytes()
}

fn start(mechanism: Mechanism, policy: &SaslPolicy) -> SaslExchange {
    SaslExchange::new(mechanism, true, policy).unwrap()
}

fn respond(bytes: Vec<u8>) -> ClientInput {
    ClientInput::Response(bytes)
}

fn json(step: &Step) -> serde_json::Value {
    let Step::Challenge(c) = step else {
        panic!("expected a challenge, got {step:?}")
    };
    assert!(c.is_error());
    serde_json::from_slice(c.payload()).unwrap()
}

fn failure(step: Step) -> Failure {
    match step {
        Step::Failure(f) => f,
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// Runs an OAUTHBEARER exchange that must end in an error challenge, acknowledged with `\x01`.
fn challenged(
    policy: &SaslPolicy,
    v: &dyn SaslValidator,
    msg: Vec<u8>,
) -> (serde_json::Value, bool, Failure) {
    let mut ex = start(Mechanism::OAuthBearer, policy);
    let step = ex.step(respond(msg), policy, v).unwrap();
    let body = json(&step);
    let counts = step.counts_toward_lockout();
    let f = failure(ex.step(decode_client_line(b"AQ=="), policy, v).unwrap());
    assert_eq!(f.ending(), Ending::Acknowledged);
    assert!(
        !f.counts_toward_lockout(),
        "the attempt was reported with the challenge"
    );
    assert!(ex.is_finished());
    (body, counts, f)
}

// ---- success ----

#[test]
fn oauthbearer_success_with_initial_response() {
    let p = policy();
    let mut ex = start(Mechanism::OAuthBearer, &p);
    let step = ex
        .step(
            respond(bearer_msg(Some(USER), &token_for(USER))),
            &p,
            &validator,
        )
        .unwrap();
    assert!(!step.counts_toward_lockout());
    assert_eq!(
        Protocol::Imap.reply(&step),
        "OK SASL authentication succeeded"
    );
    assert_eq!(
        Protocol::Smtp.reply(&step),
        "235 2.7.0 Authentication successful"
    );
    assert_eq!(Protocol::Pop3.reply(&step), "+OK Authentication successful");
    assert_eq!(
        Protocol::ManageSieve.reply(&step),
        "OK \"Authentication successful\""
    );
    let Step::Success(a) = step else {
        panic!("expected success")
    };
    assert_eq!(a.mechanism(), Mechanism::OAuthBearer);
    assert_eq!(a.identity(), USER);
    assert_eq!(a.requested_identity(), Some(USER));
    assert_eq!(a.subject(), USER);
    assert_eq!(a.client_id(), "mail-client");
    assert_eq!(a.scope(), &Scope::parse("openid mail").unwrap());
    assert_eq!(a.claims().expires_at, NOW + 3600);
    assert!(ex.is_finished());
    assert_eq!(
        ex.step(respond(vec![1]), &p, &validator),
        Err(ExchangeError::Finished)
    );
}

#[test]
fn oauthbearer_success_without_authzid_logs_in_as_subject() {
    let p = policy();
    let mut ex = start(Mechanism::OAuthBearer, &p);
    let step = ex
        .step(respond(bearer_msg(None, &token_for(USER))), &p, &validator)
        .unwrap();
    let Step::Success(a) = step else {
        panic!("expected success")
    };
    assert_eq!(a.requested_identity(), None);
    assert_eq!(a.identity(), USER);
}

#[test]
fn success_without_sasl_ir_goes_through_the_empty_challenge() {
    for protocol in [
        Protocol::Imap,
        Protocol::Smtp,
        Protocol::Pop3,
        Protocol::ManageSieve,
    ] {
        let p = policy();
        let mut ex = start(Mechanism::OAuthBearer, &p);
        let step = ex.no_initial_response().unwrap();
        let expected = match protocol {
            Protocol::Imap | Protocol::Pop3 => "+ ",
            Protocol::Smtp => "334 ",
            Protocol::ManageSieve => "\"\"",
        };
        assert_eq!(protocol.reply(&step), expected);
        let Step::Challenge(c) = &step else {
            panic!("expected the empty challenge")
        };
        assert!(!c.is_error() && c.payload().is_empty() && !c.counts_toward_lockout());
        assert_eq!(ex.no_initial_response(), Err(ExchangeError::AlreadyStarted));
        let line = base64_line(&bearer_msg(Some(USER), &token_for(USER)));
        let step = ex
            .step(decode_client_line(line.as_bytes()), &p, &validator)
            .unwrap();
        assert!(matches!(step, Step::Success(_)), "{protocol:?}");
        assert_eq!(ex.no_initial_response(), Err(ExchangeError::Finished));
    }
}

#[test]
fn xoauth2_success_with_and_without_initial_response() {
    let p = policy();
    let mut ex = start(Mechanism::XOAuth2, &p);
    let line = base64_line(&xoauth2_msg(USER, &token_for(USER)));
    let step = ex
        .step(decode_initial_response(line.as_bytes()), &p, &validator)
        .unwrap();
    let Step::Success(a) = step else {
        panic!("expected success")
    };
    assert_eq!(a.mechanism(), Mechanism::XOAuth2);
    assert_eq!(a.identity(), USER);

    let mut ex = start(Mechanism::XOAuth2, &p);
    assert!(matches!(
        ex.no_initial_response().unwrap(),
        Step::Challenge(_)
    ));
    let step = ex
        .step(decode_client_line(line.as_bytes()), &p, &validator)
        .unwrap();
    assert!(matches!(step, Step::Success(_)));
}

struct Aliases;

impl SaslValidator for Aliases {
    fn validate(&self, token: &str) -> Result<AccessClaims, TokenError> {
        validator(token)
    }
    fn accepts_identity(&self, requested: &str, claims: &AccessClaims) -> bool {
        requested == claims.subject
            || (claims.subject == USER && requested == "postmaster@example.com")
    }
}

#[test]
fn alias_callback_accepts_other_identities() {
    let p = policy();
    let mut ex = start(Mechanism::OAuthBearer, &p);
    let msg = bearer_msg(Some("postmaster@example.com"), &token_for(USER));
    let Step::Success(a) = ex.step(respond(msg), &p, &Aliases).unwrap() else {
        panic!("the alias is accepted")
    };
    assert_eq!(a.identity(), "postmaster@example.com");
    assert_eq!(a.subject(), USER);

    let mut ex = start(Mechanism::XOAuth2, &p);
    let step = ex.step(
        respond(xoauth2_msg("postmaster@example.com", &token_for(USER))),
        &p,
        &Aliases,
    );
    assert!(matches!(step.unwrap(), Step::Success(_)));

    // The default accepts only the subject itself.
    let mut ex = start(Mechanism::OAuthBearer, &p);
    let msg = bearer_msg(Some("postmaster@example.com"), &token_for(USER));
    assert!(matches!(
        ex.step(respond(msg), &p, &validator).unwrap(),
        Step::Challenge(_)
    ));
}

#[test]
fn authzid_with_escaped_characters_matches_the_subject() {
    let subject = "odd,name=x@example.com";
    let p = policy();
    let mut ex = start(Mechanism::OAuthBearer, &p);
    let msg = bearer_msg(Some(subject), &token_for(subject));
    assert!(String::from_utf8_lossy(&msg).contains("odd=2Cname=3Dx"));
    let Step::Success(a) = ex.step(respond(msg), &p, &validator).unwrap() else {
        panic!()
    };
    assert_eq!(a.identity(), subject);
}

// ---- failures answered with an error challenge ----

#[test]
fn identity_mismatch_is_invalid_token_and_counts() {
    let (body, lockout, f) = challenged(
        &policy(),
        &validator,
        bearer_msg(Some("Other@Example.COM"), &token_for(USER)),
    );
    assert_eq!(body["status"], "invalid_token");
    assert_eq!(body["openid-configuration"], OIDC);
    assert!(
        lockout,
        "counted (against the source address: the report names no identity)"
    );
    assert_eq!(f.reason(), FailureReason::IdentityMismatch);
    assert_eq!(f.identity(), Some("Other@Example.COM"));
    assert_eq!(
        Protocol::Imap.failure(&f),
        "NO [AUTHORIZATIONFAILED] The token does not grant access to this account"
    );
    assert_eq!(
        Protocol::Smtp.failure(&f),
        "535 5.7.8 Authentication credentials invalid"
    );
}

#[test]
fn expired_token_is_invalid_token_and_counts() {
    let late = |t: &str| access_token::validate(&ring(), t, NOW + 3600, &NothingRevoked);
    let (body, lockout, f) = challenged(&policy(), &late, bearer_msg(Some(USER), &token_for(USER)));
    assert_eq!(body["status"], "invalid_token");
    assert_eq!(f.reason(), FailureReason::InvalidToken(TokenError::Expired));
    assert!(lockout);
    assert_eq!(
        Protocol::Imap.failure(&f),
        "NO [AUTHENTICATIONFAILED] SASL authentication failed"
    );
    assert_eq!(
        Protocol::Pop3.failure(&f),
        "-ERR [AUTH] Authentication failed"
    );
    assert_eq!(
        Protocol::ManageSieve.failure(&f),
        "NO \"Authentication failed\""
    );
}

struct PasswordChanged;

impl RevocationView for PasswordChanged {
    fn access_revoked_at(&self, _: &GrantId) -> Option<u64> {
        None
    }
    fn credential_version(&self, _: &str) -> u32 {
        1
    }
}

struct GrantRevoked;

impl RevocationView for GrantRevoked {
    fn access_revoked_at(&self, _: &GrantId) -> Option<u64> {
        Some(NOW)
    }
    fn credential_version(&self, _: &str) -> u32 {
        0
    }
}

#[test]
fn revoked_token_is_invalid_token_and_counts() {
    for view in [&PasswordChanged as &dyn RevocationView, &GrantRevoked] {
        let v = |t: &str| access_token::validate(&ring(), t, NOW, view);
        let (body, lockout, f) = challenged(&policy(), &v, bearer_msg(None, &token_for(USER)));
        assert_eq!(body["status"], "invalid_token");
        assert_eq!(f.reason(), FailureReason::InvalidToken(TokenError::Revoked));
        assert!(lockout, "counted, with or without an authzid");
    }
}

#[test]
fn forged_and_foreign_tokens_are_invalid_token() {
    let mut forged = token_for(USER);
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let (_, _, f) = challenged(&policy(), &validator, bearer_msg(Some(USER), &forged));
    assert!(matches!(
        f.reason(),
        FailureReason::InvalidToken(TokenError::BadSignature | TokenError::Malformed)
    ));

    let other_ring = KeyRing::new(TokenKey::new(9, &[1u8; 32]).unwrap(), vec![]).unwrap();
    let foreign = access_token::issue(&other_ring, &claims(USER, "mail")).unwrap();
    let (_, _, f) = challenged(&policy(), &validator, bearer_msg(Some(USER), &foreign));
    assert_eq!(
        f.reason(),
        FailureReason::InvalidToken(TokenError::UnknownKey)
    );

    let (_, _, f) = challenged(&policy(), &validator, bearer_msg(Some(USER), "not-a-token"));
    assert_eq!(
        f.reason(),
        FailureReason::InvalidToken(TokenError::Malformed)
    );
}

#[test]
fn insufficient_scope_when_the_embedder_requires_one() {
    let p = SaslPolicy {
        accepted_scopes: vec!["imap".into()],
        ..policy()
    };
    let (body, lockout, f) = challenged(&p, &validator, bearer_msg(Some(USER), &token_for(USER)));
    assert_eq!(body["status"], "insufficient_scope");
    assert_eq!(
        body["scope"], "imap",
        "the first accepted scope is shown when no challenge scope is set"
    );
    assert!(!lockout, "a genuine token lacking scope is not a guess");
    assert_eq!(f.reason(), FailureReason::InsufficientScope);

    // A token that has it passes.
    let p = SaslPolicy {
        accepted_scopes: vec!["mail".into()],
        ..policy()
    };
    let mut ex = start(Mechanism::OAuthBearer, &p);
    let step = ex.step(
        respond(bearer_msg(Some(USER), &token_for(USER))),
        &p,
        &validator,
    );
    assert!(matches!(step.unwrap(), Step::Success(_)));
}

#[test]
fn challenge_scope_setting_wins_over_accepted_scopes() {
    let p = SaslPolicy {
        challenge_scope: Some("https://mail.example.com/".into()),
        accepted_scopes: vec!["imap".into()],
        ..policy()
    };
    let (body, _, _) = challenged(&p, &validator, bearer_msg(None, "bad"));
    assert_eq!(body["scope"], "https://mail.example.com/");
}

#[test]
fn challenge_omits_unset_fields() {
    let (body, _, _) = challenged(&SaslPolicy::default(), &validator, bearer_msg(None, "bad"));
    assert_eq!(body, serde_json::json!({"status": "invalid_token"}));
}

// ---- the default policy: a mail scope and a user (issue 15, finding 1) ----

/// A token for `subject` issued to `client` under `grant`, with `scope`.
fn token_with(grant: GrantId, subject: &str, client: &str, scope: &str) -> String {
    let claims = AccessClaims {
        grant_id: grant,
        subject: subject.into(),
        client_id: client.into(),
        ..claims(subject, scope)
    };
    access_token::issue(&ring(), &claims).unwrap()
}

/// A `client_credentials` token: the client's derived grant, the client as subject.
fn client_credentials_token(client: &str, scope: &str) -> String {
    let grant = oauth_proto::token::client_credentials_grant_id(client);
    token_with(grant, client, client, scope)
}

#[test]
fn default_policy_requires_a_mail_scope() {
    let p = policy();
    assert_eq!(
        p.accepted_scopes,
        ["mail", "urn:ietf:params:oauth:scope:mail"],
        "the default accepts this server's scope and the mailmaint draft's URN"
    );
    // A token granted only `profile`, or `calendar`, is refused over both mechanisms.
    for scope in ["profile", "calendar", "openid profile calendar contacts"] {
        let token = token_for_scope(scope);
        let (body, lockout, f) = challenged(&p, &validator, bearer_msg(Some(USER), &token));
        assert_eq!(body["status"], "insufficient_scope", "{scope}");
        assert_eq!(
            body["scope"], "mail",
            "the challenge names the scope to ask for"
        );
        assert_eq!(body["openid-configuration"], OIDC);
        assert_eq!(f.reason(), FailureReason::InsufficientScope);
        assert!(!lockout, "a genuine token lacking scope is not a guess");
        assert_eq!(
            Protocol::Imap.failure(&f),
            "NO [AUTHORIZATIONFAILED] The token does not grant access to this account"
        );

        let mut ex = start(Mechanism::XOAuth2, &p);
        let step = ex
            .step(respond(xoauth2_msg(USER, &token)), &p, &validator)
            .unwrap();
        assert_eq!(
            json(&step),
            serde_json::json!({"status": "403", "schemes": "bearer", "scope": "mail"})
        );
        let f = failure(ex.step(respond(Vec::new()), &p, &validator).unwrap());
        assert_eq!(f.reason(), FailureReason::InsufficientScope);
        assert_eq!(
            Protocol::Smtp.failure(&f),
            "535 5.7.8 Authentication credentials invalid"
        );
    }
    // Either accepted scope is enough, alone or among others.
    for scope in [
        "mail",
        "urn:ietf:params:oauth:scope:mail",
        "calendar mail profile",
    ] {
        let mut ex = start(Mechanism::OAuthBearer, &p);
        let msg = bearer_msg(Some(USER), &token_for_scope(scope));
        let step = ex.step(respond(msg), &p, &validator).unwrap();
        assert!(matches!(step, Step::Success(_)), "{scope}: {step:?}");
    }
    // An empty list accepts nothing: there is no "any scope" setting.
    let none = SaslPolicy {
        accepted_scopes: Vec::new(),
        ..policy()
    };
    let (body, _, f) = challenged(&none, &validator, bearer_msg(Some(USER), &token_for(USER)));
    assert_eq!(f.reason(), FailureReason::InsufficientScope);
    assert!(body.get("scope").is_none());
}

fn token_for_scope(scope: &str) -> String {
    access_token::issue(&ring(), &claims(USER, scope)).unwrap()
}

#[test]
fn default_policy_refuses_client_credentials_tokens() {
    let p = policy();
    let token = client_credentials_token("svc", "mail");
    // With its own client id as the identity (what a naive listener accepted), with another
    // identity, and with none.
    for authzid in [Some("svc"), Some(USER), None] {
        let (body, lockout, f) = challenged(&p, &validator, bearer_msg(authzid, &token));
        assert_eq!(body["status"], "invalid_token", "{authzid:?}");
        assert!(body.get("scope").is_none(), "no scope would help");
        assert_eq!(f.reason(), FailureReason::NoUser, "{authzid:?}");
        assert!(!lockout, "a genuine token naming no user is not a guess");
        assert_eq!(
            Protocol::Imap.failure(&f),
            "NO [AUTHORIZATIONFAILED] The token does not grant access to this account"
        );
    }
    let mut ex = start(Mechanism::XOAuth2, &p);
    let step = ex
        .step(respond(xoauth2_msg("svc", &token)), &p, &validator)
        .unwrap();
    assert_eq!(json(&step)["status"], "401");
    let f = failure(ex.step(respond(Vec::new()), &p, &validator).unwrap());
    assert_eq!(f.reason(), FailureReason::NoUser);

    // A user's token whose subject happens to equal its client id is still a user's token: only
    // the client's derived grant marks a client_credentials token.
    let lookalike = token_with(GrantId([5; 16]), "svc", "svc", "mail");
    let mut ex = start(Mechanism::OAuthBearer, &p);
    let step = ex
        .step(respond(bearer_msg(Some("svc"), &lookalike)), &p, &validator)
        .unwrap();
    assert!(matches!(step, Step::Success(_)), "{step:?}");

    // The embedder may allow them; the scope is still required.
    let allowing = SaslPolicy {
        allow_client_credentials: true,
        ..policy()
    };
    let mut ex = start(Mechanism::OAuthBearer, &allowing);
    let step = ex
        .step(
            respond(bearer_msg(Some("svc"), &token)),
            &allowing,
            &validator,
        )
        .unwrap();
    let Step::Success(a) = step else {
        panic!("expected success, got {step:?}")
    };
    assert!(a.claims().is_client_credentials());
    assert_eq!(a.identity(), "svc");
    let (_, _, f) = challenged(
        &allowing,
        &validator,
        bearer_msg(None, &client_credentials_token("svc", "profile")),
    );
    assert_eq!(f.reason(), FailureReason::InsufficientScope);
}

#[test]
fn missing_token_is_a_discovery_request_and_does_not_count() {
    let msg =
        b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=\x01\x01".to_vec();
    let (body, lockout, f) = challenged(&policy(), &validator, msg);
    assert_eq!(body["status"], "invalid_token");
    assert_eq!(body["openid-configuration"], OIDC);
    assert!(!lockout);
    assert_eq!(f.reason(), FailureReason::NoToken);
    let msg = b"n,,\x01host=server.example.com\x01\x01".to_vec();
    let (_, lockout, f) = challenged(&policy(), &validator, msg);
    assert_eq!((lockout, f.reason()), (false, FailureReason::NoToken));
}

#[test]
fn bad_scheme_and_bad_b64token_get_a_challenge_and_count() {
    let msg = b"n,a=u,\x01auth=Basic dTpw\x01\x01".to_vec();
    let (body, lockout, f) = challenged(&policy(), &validator, msg);
    assert_eq!(body["status"], "invalid_request");
    assert!(lockout);
    assert_eq!(
        f.reason(),
        FailureReason::Malformed(ParseError::BadAuthScheme)
    );
    let msg = b"n,a=u,\x01auth=Bearer a b\x01\x01".to_vec();
    let (body, _, f) = challenged(&policy(), &validator, msg);
    assert_eq!(body["status"], "invalid_token");
    assert_eq!(f.reason(), FailureReason::Malformed(ParseError::BadToken));
}

#[test]
fn host_and_port_must_match_when_configured() {
    let p = SaslPolicy {
        host: Some("IMAP.example.com".into()),
        port: Some(993),
        ..policy()
    };
    let mut ex = start(Mechanism::OAuthBearer, &p);
    let step = ex.step(
        respond(bearer_msg(Some(USER), &token_for(USER))),
        &p,
        &validator,
    );
    assert!(
        matches!(step.unwrap(), Step::Success(_)),
        "host compares case-insensitively"
    );

    let wrong_port = SaslPolicy {
        port: Some(143),
        ..p.clone()
    };
    let (body, lockout, f) = challenged(
        &wrong_port,
        &validator,
        bearer_msg(Some(USER), &token_for(USER)),
    );
    assert_eq!(body["status"], "invalid_request");
    assert_eq!(f.reason(), FailureReason::EndpointMismatch);
    assert!(lockout);

    let wrong_host = SaslPolicy {
        host: Some("mail.example.org".into()),
        ..p.clone()
    };
    let (_, _, f) = challenged(
        &wrong_host,
        &validator,
        bearer_msg(Some(USER), &token_for(USER)),
    );
    assert_eq!(f.reason(), FailureReason::EndpointMismatch);

    // A client that sends no host/port is not held to them.
    let mut ex = start(Mechanism::OAuthBearer, &wrong_host);
    let msg = format!("n,,\x01auth=Bearer {}\x01\x01", token_for(USER)).into_bytes();
    assert!(matches!(
        ex.step(respond(msg), &wrong_host, &validator).unwrap(),
        Step::Success(_)
    ));
}

// ---- the reply to the error challenge ----

#[test]
fn wrong_dummy_reply_still_fails_with_the_original_reason() {
    let p = policy();
    for reply in [
        vec![],
        vec![1, 1],
        bearer_msg(Some(USER), &token_for(USER)),
        b"\x01x".to_vec(),
    ] {
        let mut ex = start(Mechanism::OAuthBearer, &p);
        let step = ex
            .step(respond(bearer_msg(Some(USER), "bad")), &p, &validator)
            .unwrap();
        assert!(step.counts_toward_lockout());
        let f = failure(ex.step(respond(reply), &p, &validator).unwrap());
        assert_eq!(f.ending(), Ending::UnexpectedReply);
        assert_eq!(
            f.reason(),
            FailureReason::InvalidToken(TokenError::Malformed)
        );
        assert!(!f.counts_toward_lockout());
        assert_eq!(
            Protocol::Imap.failure(&f),
            "NO [AUTHENTICATIONFAILED] SASL authentication failed"
        );
    }
    // An undecodable line is a wrong reply too.
    let mut ex = start(Mechanism::OAuthBearer, &p);
    let _ = ex
        .step(respond(bearer_msg(Some(USER), "bad")), &p, &validator)
        .unwrap();
    let f = failure(ex.step(decode_client_line(b"!!"), &p, &validator).unwrap());
    assert_eq!(f.ending(), Ending::UnexpectedReply);
}

#[test]
fn xoauth2_challenge_then_empty_reply() {
    let p = SaslPolicy {
        challenge_scope: Some("https://mail.google.com/".into()),
        ..policy()
    };
    let mut ex = start(Mechanism::XOAuth2, &p);
    let step = ex
        .step(respond(xoauth2_msg(USER, "bad")), &p, &validator)
        .unwrap();
    let Step::Challenge(c) = &step else {
        panic!("expected a challenge")
    };
    assert_eq!(
        c.payload(),
        br#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#
    );
    assert_eq!(
        Protocol::Smtp.reply(&step),
        format!("334 {}", c.to_base64())
    );
    assert!(step.counts_toward_lockout());
    let f = failure(ex.step(decode_client_line(b""), &p, &validator).unwrap());
    assert_eq!(f.ending(), Ending::Acknowledged);
    assert_eq!(
        Protocol::Smtp.failure(&f),
        "535 5.7.8 Authentication credentials invalid"
    );

    // `\x01` is OAUTHBEARER's acknowledgement, not XOAUTH2's.
    let mut ex = start(Mechanism::XOAuth2, &p);
    let _ = ex
        .step(respond(xoauth2_msg(USER, "bad")), &p, &validator)
        .unwrap();
    let f = failure(
        ex.step(decode_client_line(b"AQ=="), &p, &validator)
            .unwrap(),
    );
    assert_eq!(f.ending(), Ending::UnexpectedReply);
}

#[test]
fn xoauth2_statuses() {
    let p = SaslPolicy {
        accepted_scopes: vec!["imap".into()],
        ..SaslPolicy::default()
    };
    let cases: &[(Vec<u8>, &str)] = &[
        (xoauth2_msg("someone@else", &token_for(USER)), "401"),
        (xoauth2_msg(USER, &token_for(USER)), "403"),
        (b"user=u\x01auth=Basic x\x01\x01".to_vec(), "400"),
        (b"user=u\x01auth=\x01\x01".to_vec(), "401"),
    ];
    for (msg, status) in cases {
        let mut ex = start(Mechanism::XOAuth2, &p);
        let step = ex.step(respond(msg.clone()), &p, &validator).unwrap();
        let body = json(&step);
        assert_eq!(body["status"], *status);
        assert_eq!(body["schemes"], "bearer");
        assert!(body.get("openid-configuration").is_none());
    }
}

// ---- failures without a challenge ----

#[test]
fn framing_errors_fail_at_once_and_count() {
    let p = policy();
    let cases: &[(Mechanism, &[u8], ParseError)] = &[
        (Mechanism::OAuthBearer, b"", ParseError::Empty),
        (
            Mechanism::OAuthBearer,
            b"p=tls-unique,,\x01auth=Bearer x\x01\x01",
            ParseError::ChannelBindingUnsupported,
        ),
        (
            Mechanism::OAuthBearer,
            b"n,a=x=41,\x01auth=Bearer x\x01\x01",
            ParseError::BadIdentity,
        ),
        (
            Mechanism::OAuthBearer,
            b"n,,\x01auth=Bearer x\x01auth=Bearer y\x01\x01",
            ParseError::DuplicateKey,
        ),
        (
            Mechanism::OAuthBearer,
            b"n,,\x01auth=Bearer x\x01",
            ParseError::Unterminated,
        ),
        (Mechanism::XOAuth2, b"", ParseError::Empty),
        (
            Mechanism::XOAuth2,
            b"n,,\x01auth=Bearer x\x01\x01",
            ParseError::BadXOAuth2Layout,
        ),
    ];
    for (mechanism, msg, error) in cases {
        let mut ex = start(*mechanism, &p);
        let step = ex.step(respond(msg.to_vec()), &p, &validator).unwrap();
        let counts = step.counts_toward_lockout();
        let f = failure(step);
        assert_eq!(f.reason(), FailureReason::Malformed(*error), "{msg:?}");
        assert_eq!(f.ending(), Ending::Immediate);
        assert!(counts && f.counts_toward_lockout());
        assert!(ex.is_finished());
        assert_eq!(
            Protocol::Imap.failure(&f),
            "NO [AUTHENTICATIONFAILED] SASL authentication failed"
        );
    }
}

#[test]
fn oversize_message_fails_at_once() {
    let p = policy();
    let mut ex = start(Mechanism::OAuthBearer, &p);
    let big = vec![b'n'; oauth_proto::sasl::MAX_MESSAGE_LEN + 1];
    let f = failure(ex.step(respond(big), &p, &validator).unwrap());
    assert_eq!(f.reason(), FailureReason::Malformed(ParseError::TooLong));
}

#[test]
fn a_lone_kvsep_as_first_message_fails_at_once() {
    let p = policy();
    let mut ex = start(Mechanism::OAuthBearer, &p);
    let f = failure(
        ex.step(decode_client_line(b"AQ=="), &p, &validator)
            .unwrap(),
    );
    assert_eq!(f.reason(), FailureReason::UnexpectedDummy);
    assert_eq!(f.ending(), Ending::Immediate);
    assert!(f.counts_toward_lockout());
}

#[test]
fn undecodable_base64_gets_the_syntax_reply() {
    let p = policy();
    let mut ex = start(Mechanism::OAuthBearer, &p);
    let f = failure(ex.step(decode_client_line(b"@@@"), &p, &validator).unwrap());
    assert_eq!(f.reason(), FailureReason::Malformed(ParseError::BadBase64));
    assert!(f.counts_toward_lockout());
    assert_eq!(Protocol::Imap.failure(&f), "BAD Invalid base64 data");
    assert_eq!(
        Protocol::Smtp.failure(&f),
        "501 5.5.2 Cannot decode response"
    );
    assert_eq!(Protocol::Pop3.failure(&f), "-ERR Invalid base64 data");
    assert_eq!(
        Protocol::ManageSieve.failure(&f),
        "NO \"Invalid base64 data\""
    );
}

#[test]
fn cancel_before_any_failure_does_not_count() {
    let p = policy();
    for mechanism in [Mechanism::OAuthBearer, Mechanism::XOAuth2] {
        let mut ex = start(mechanism, &p);
        let _ = ex.no_initial_response().unwrap();
        let step = ex.step(decode_client_line(b"*"), &p, &validator).unwrap();
        assert!(!step.counts_toward_lockout());
        assert_eq!(Protocol::Imap.reply(&step), "BAD Authentication cancelled");
        assert_eq!(
            Protocol::Smtp.reply(&step),
            "501 5.7.0 Authentication cancelled"
        );
        assert_eq!(Protocol::Pop3.reply(&step), "-ERR Authentication cancelled");
        assert_eq!(
            Protocol::ManageSieve.reply(&step),
            "NO \"Authentication cancelled\""
        );
        let f = failure(step);
        assert_eq!(
            (f.reason(), f.ending()),
            (FailureReason::Cancelled, Ending::Cancelled)
        );
        assert!(ex.is_finished());
    }
}

#[test]
fn cancel_after_the_challenge_keeps_the_counted_failure() {
    let p = policy();
    let mut ex = start(Mechanism::OAuthBearer, &p);
    let step = ex
        .step(respond(bearer_msg(Some(USER), "bad")), &p, &validator)
        .unwrap();
    assert!(
        step.counts_toward_lockout(),
        "counted when the challenge is sent"
    );
    let f = failure(ex.step(ClientInput::Cancel, &p, &validator).unwrap());
    assert_eq!(
        f.reason(),
        FailureReason::InvalidToken(TokenError::Malformed)
    );
    assert_eq!(f.ending(), Ending::Cancelled);
    assert!(
        !f.counts_toward_lockout(),
        "not counted twice, and the cancel does not undo it"
    );
    assert_eq!(Protocol::Imap.failure(&f), "BAD Authentication cancelled");
}

#[test]
fn at_most_one_lockout_per_exchange_and_failures_are_permanent() {
    let p = policy();
    let inputs = [
        respond(bearer_msg(Some(USER), "bad")),
        respond(bearer_msg(Some(USER), &token_for(USER))),
        respond(vec![1]),
        respond(vec![]),
        ClientInput::Cancel,
        ClientInput::Invalid(ParseError::BadBase64),
    ];
    for first in &inputs {
        for second in &inputs {
            let mut ex = start(Mechanism::OAuthBearer, &p);
            let mut counted = 0;
            for input in [first, second] {
                let Ok(step) = ex.step(input.clone(), &p, &validator) else {
                    break;
                };
                counted += usize::from(step.counts_toward_lockout());
                for protocol in [
                    Protocol::Imap,
                    Protocol::Smtp,
                    Protocol::Pop3,
                    Protocol::ManageSieve,
                ] {
                    let reply = protocol.reply(&step);
                    assert!(!reply.starts_with('4'), "temporary failure {reply:?}");
                    assert!(
                        !reply.contains("TRYLATER") && !reply.contains("[SYS/TEMP]"),
                        "{reply:?}"
                    );
                }
            }
            assert!(counted <= 1, "{first:?} then {second:?}");
        }
    }
}

// ---- TLS (checklist item 144) ----

#[test]
fn bearer_mechanisms_require_tls() {
    let strict = SaslPolicy::default();
    assert!(!strict.offers(false));
    assert!(strict.offers(true));
    for mechanism in [Mechanism::OAuthBearer, Mechanism::XOAuth2] {
        assert_eq!(
            SaslExchange::new(mechanism, false, &strict),
            Err(StartError::TlsRequired)
        );
        assert!(SaslExchange::new(mechanism, true, &strict).is_ok());
    }
    let testing = SaslPolicy {
        allow_plaintext: true,
        ..SaslPolicy::default()
    };
    assert!(testing.offers(false));
    let mut ex = SaslExchange::new(Mechanism::OAuthBearer, false, &testing).unwrap();
    let step = ex.step(
        respond(bearer_msg(Some(USER), &token_for(USER))),
        &testing,
        &validator,
    );
    assert!(matches!(step.unwrap(), Step::Success(_)));

    let e = StartError::TlsRequired;
    assert_eq!(
        Protocol::Imap.refused(e),
        "NO [PRIVACYREQUIRED] TLS is required for this mechanism"
    );
    assert_eq!(
        Protocol::Smtp.refused(e),
        "538 5.7.11 Encryption required for requested authentication mechanism"
    );
    assert_eq!(
        Protocol::Pop3.refused(e),
        "-ERR TLS is required for this mechanism"
    );
    assert_eq!(
        Protocol::ManageSieve.refused(e),
        "NO (ENCRYPT-NEEDED) \"TLS is required for this mechanism\""
    );
}

// ---- replies and redaction ----

#[test]
fn challenge_lines_per_protocol() {
    let p = policy();
    let mut ex = start(Mechanism::OAuthBearer, &p);
    let step = ex
        .step(respond(bearer_msg(None, "bad")), &p, &validator)
        .unwrap();
    let Step::Challenge(c) = &step else { panic!() };
    let b64 = c.to_base64();
    assert_eq!(Protocol::Imap.reply(&step), format!("+ {b64}"));
    assert_eq!(Protocol::Smtp.reply(&step), format!("334 {b64}"));
    assert_eq!(Protocol::Pop3.reply(&step), format!("+ {b64}"));
    assert_eq!(Protocol::ManageSieve.reply(&step), format!("\"{b64}\""));
}

#[test]
fn no_token_in_debug_of_any_outcome() {
    let p = policy();
    let token = token_for(USER);
    let mut ex = start(Mechanism::OAuthBearer, &p);
    let input = respond(bearer_msg(Some(USER), &token));
    let shown_input = format!("{input:?}");
    let step = ex.step(input, &p, &validator).unwrap();
    let mut ex2 = start(Mechanism::XOAuth2, &p);
    let step2 = ex2
        .step(respond(xoauth2_msg("x@y", &token)), &p, &validator)
        .unwrap();
    for shown in [
        shown_input,
        format!("{step:?}"),
        format!("{ex:?}"),
        format!("{step2:?}"),
        format!("{ex2:?}"),
    ] {
        assert!(!shown.contains(&token[..20]), "{shown}");
    }
}

fn base64_line(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn q146_oauth10a_keyed_tokens_fail_with_or_without_host_and_port() {
    // RFC 7628 §3.3's OAuth 1.0a message, once with host and port and once without them (which
    // §3.1 forbids for keyed-digest tokens): only Bearer is supported, so both fail.
    let oauth10a = "auth=OAuth realm=\"Example\",oauth_consumer_key=\"9djdj82h48djs9d2\",\
oauth_token=\"kkk9d7dh3k39sjv7\",oauth_signature_method=\"HMAC-SHA1\",\
oauth_timestamp=\"137131201\",oauth_nonce=\"7d8f3e4a\",\
oauth_signature=\"SSdtIGEgbGl0dGxlIHRlYSBwb3Qu\"\x01\x01";
    let p = SaslPolicy {
        host: Some("server.example.com".into()),
        port: Some(143),
        ..policy()
    };
    for kvpairs in [
        format!("host=server.example.com\x01port=143\x01{oauth10a}"),
        oauth10a.to_owned(),
    ] {
        let msg = format!("n,a={USER},\x01{kvpairs}").into_bytes();
        let (body, lockout, f) = challenged(&p, &validator, msg);
        assert_eq!(body["status"], "invalid_request");
        assert!(lockout, "the failure counts");
        assert_eq!(
            f.reason(),
            FailureReason::Malformed(ParseError::BadAuthScheme)
        );
    }
}

// ---- audience (RFC 8707) ----

#[test]
fn a_policy_resource_refuses_tokens_for_other_resources_as_invalid_token() {
    const IMAP: &str = "imap://mail.example.com";
    let token = |audience: &[&str]| {
        let mut c = claims(USER, "mail");
        c.audience = access_token::Audience::new(audience).unwrap();
        access_token::issue(&ring(), &c).unwrap()
    };
    let p = SaslPolicy {
        resource: Some(IMAP.into()),
        ..policy()
    };
    let mut ex = start(Mechanism::OAuthBearer, &p);
    let step = ex
        .step(
            respond(bearer_msg(
                Some(USER),
                &token(&[IMAP, "smtp://mail.example.com"]),
            )),
            &p,
            &validator,
        )
        .unwrap();
    assert!(matches!(step, Step::Success(_)), "{step:?}");
    // Another resource's token, and a token without audience, are not valid here.
    for audience in [&["smtp://mail.example.com"][..], &[][..]] {
        let (body, counts, f) =
            challenged(&p, &validator, bearer_msg(Some(USER), &token(audience)));
        assert_eq!(body["status"], "invalid_token");
        // A real token at the wrong service guesses nothing: no lockout for it.
        assert!(!counts);
        assert_eq!(
            f.reason(),
            FailureReason::InvalidToken(TokenError::WrongAudience)
        );
    }
    // Without a resource in the policy the audience is not looked at.
    let mut ex = start(Mechanism::OAuthBearer, &policy());
    let step = ex
        .step(
            respond(bearer_msg(Some(USER), &token(&["smtp://mail.example.com"]))),
            &policy(),
            &validator,
        )
        .unwrap();
    assert!(matches!(step, Step::Success(_)), "{step:?}");
}
