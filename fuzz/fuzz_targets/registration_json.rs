//! Any bytes as a dynamic registration body (RFC 7591): validated into a client or refused with
//! `invalid_client_metadata` / `invalid_redirect_uri`, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oauth_proto::client_metadata::validate;
use oauth_proto::config::Config;

fuzz_target!(|data: &[u8]| {
    let config = Config::default();
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Err(e) = validate(&map, &config) {
            let code = e.code.as_str();
            assert!(
                code == "invalid_client_metadata" || code == "invalid_redirect_uri",
                "unexpected error code {code}"
            );
        }
    }
});
