//! Any bytes as an access token: validation returns an error or claims, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oauth_proto::access_token::{validate, KeyRing, TokenKey};
use oauth_proto::store::NothingRevoked;

fuzz_target!(|data: &[u8]| {
    let keys = KeyRing::new(TokenKey::new(1, &[7u8; 32]).expect("key"), vec![]).expect("ring");
    if let Ok(token) = std::str::from_utf8(data) {
        let _ = validate(&keys, token, 1_000_000, &NothingRevoked);
    }
});
