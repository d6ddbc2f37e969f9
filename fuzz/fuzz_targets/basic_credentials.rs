//! Any string as an `Authorization` header value for client authentication.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oauth_proto::client_auth::decode_basic;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = decode_basic(s);
    }
});
