//! Any bytes as a form body or query string: parse, then read every OAuth parameter.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oauth_proto::params::Params;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Params::parse(data) {
        for name in ["grant_type", "code", "client_id", "scope", "state", "redirect_uri", "code_verifier"] {
            let _ = p.get(name);
        }
    }
});
