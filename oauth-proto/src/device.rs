//! The device authorization endpoint (RFC 8628 §3.1, §3.2) and user codes.
//!
//! A device (a TV, a mail client on a headless box) asks for a `device_code`, which it polls the
//! token endpoint with, and a `user_code`, which the user types at `verification_uri` on another
//! device. The device code is 256 random bits; the user code is 8 characters from the 20-letter
//! alphabet `BCDFGHJKLMNPQRSTVWXZ` (no vowels, so no words; no digits, so no 0/O or 1/I confusion),
//! shown as `XXXX-XXXX` and compared after normalization (upper case, dashes, spaces and punctuation
//! removed, RFC 8628 §6.1). 20^8 codes give about 34.5 bits, which is why entries are limited per
//! attempt key ([`Engine::device_verify`](crate::engine::Engine::device_verify)).
//!
//! Both codes are stored only as hashes, and only in device records, reached by
//! [`DeviceLookup`]: a device code is never an authorization code or a refresh token, nor the reverse.

use serde::Serialize;

use crate::ask::{self, Halt};
use crate::client::GrantType;
use crate::client_auth;
use crate::engine::Engine;
use crate::error::{ErrorCode, OAuthError};
use crate::flow::{Cx, Flow, Procedure, Suspend};
use crate::http::{FormRequest, HttpRequest};
use crate::issue::SECRET_BYTES;
use crate::random::Random;
use crate::response::Response;
use crate::secret::{Secret, SecretHash};
use crate::store::{DeviceLookup, DeviceRecord, DeviceStatus, Effect};

/// The user code alphabet (RFC 8628 §6.1): consonants only.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Significant characters in a user code.
pub const USER_CODE_LEN: usize = 8;
/// New user codes drawn when one collides with a live code before giving up.
const USER_CODE_TRIES: usize = 4;

/// Draws a user code (normalized form, no dash), without modulo bias.
pub fn generate_user_code(rng: &mut dyn Random) -> String {
    let mut code = String::with_capacity(USER_CODE_LEN);
    while code.len() < USER_CODE_LEN {
        let mut buf = [0u8; 16];
        rng.fill(&mut buf);
        for b in buf {
            // 240 = 12 * 20: bytes above it would favour the first letters.
            if b < 240 && code.len() < USER_CODE_LEN {
                code.push(USER_CODE_ALPHABET[usize::from(b % 20)] as char);
            }
        }
    }
    code
}

/// Normalizes what a user typed: upper case, without spaces, dashes or other punctuation. `None`
/// when the rest is not 8 letters of the alphabet.
pub fn normalize_user_code(input: &str) -> Option<String> {
    if input.len() > 64 {
        return None;
    }
    let code: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_ascii_punctuation())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)))
        .then_some(code)
}

/// The display form `XXXX-XXXX` of a normalized user code.
pub fn format_user_code(normalized: &str) -> String {
    match (normalized.get(..4), normalized.get(4..)) {
        (Some(a), Some(b)) => format!("{a}-{b}"),
        _ => normalized.to_owned(),
    }
}

/// The hash a device record is found by, from a normalized user code.
pub fn user_code_hash(normalized: &str) -> SecretHash {
    SecretHash::of(normalized)
}

/// `POST /device_authorization`.
#[derive(Debug)]
pub struct DeviceAuthorization {
    engine: Engine,
    request: FormRequest,
}

impl Engine {
    /// Starts a device authorization request (RFC 8628 §3.1).
    pub fn device_authorization(
        &self,
        request: HttpRequest,
        now: u64,
    ) -> Flow<DeviceAuthorization> {
        Flow::new(
            DeviceAuthorization {
                engine: self.clone(),
                request: FormRequest::new(request, self.config().max_body_bytes),
            },
            now,
        )
    }
}

impl Procedure for DeviceAuthorization {
    type Output = Response;

    fn run(&self, cx: &mut Cx<'_>) -> Result<Response, Suspend> {
        ask::finish(self.handle(cx), |e| Response::error(&e))
    }
}

#[derive(Serialize)]
struct Body<'a> {
    device_code: &'a str,
    user_code: &'a str,
    verification_uri: &'a str,
    verification_uri_complete: &'a str,
    expires_in: u64,
    interval: u64,
}

impl DeviceAuthorization {
    fn handle(&self, cx: &mut Cx<'_>) -> Result<Response, Halt> {
        let config = self.engine.config();
        let params = self.request.form()?;
        let presented = self.request.presented()?;
        let stored = ask::client(cx, config, &presented.client_id)?;
        let client = client_auth::verify(presented, stored, cx.now())?;
        if !client.allows(GrantType::DeviceCode) {
            return Err(OAuthError::unauthorized_client(
                "this client may not use the device authorization grant",
            )
            .into());
        }
        let scope = crate::scope::requested(params.get("scope")?, &client.scope)?;
        let resources = crate::resource::requested(params, &config.resources, &scope)?;
        let now = cx.now();
        let device_code = Secret::generate(cx.rng(), SECRET_BYTES);
        let mut user_code = None;
        for _ in 0..USER_CODE_TRIES {
            let candidate = generate_user_code(cx.rng());
            let taken = ask::device(cx, DeviceLookup::UserCode(user_code_hash(&candidate)))?;
            if taken.is_none_or(|d| now >= d.expires_at) {
                user_code = Some(candidate);
                break;
            }
        }
        let user_code = user_code.ok_or_else(|| {
            OAuthError::new(
                ErrorCode::TemporarilyUnavailable,
                "no free user code could be drawn; try again",
            )
        })?;
        let expires_in = config.device_code_ttl_secs;
        cx.effect(Effect::PutDevice(DeviceRecord {
            device_code_hash: device_code.hash(),
            user_code_hash: user_code_hash(&user_code),
            client_id: client.client_id.clone(),
            scope,
            issued_at: now,
            expires_at: now + expires_in,
            interval: config.device_poll_interval_secs,
            last_poll: None,
            status: DeviceStatus::Pending,
            revision: 0,
            resources,
        }));
        let shown = format_user_code(&user_code);
        let verification_uri = self.engine.endpoints().device_verification;
        let complete = crate::redirect::with_params(&verification_uri, &[("user_code", &shown)])
            .unwrap_or_else(|| verification_uri.clone());
        Ok(Response::json(
            200,
            &Body {
                device_code: device_code.expose(),
                user_code: &shown,
                verification_uri: &verification_uri,
                verification_uri_complete: &complete,
                expires_in,
                interval: config.device_poll_interval_secs,
            },
        ))
    }
}
