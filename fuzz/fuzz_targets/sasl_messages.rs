//! Any bytes as an OAUTHBEARER or XOAUTH2 client message, raw and as a base64 wire line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oauth_proto::sasl;

fuzz_target!(|data: &[u8]| {
    let _ = sasl::parse_oauthbearer(data);
    let _ = sasl::parse_xoauth2(data);
    let _ = sasl::decode_client_line(data);
    let _ = sasl::decode_initial_response(data);
});
