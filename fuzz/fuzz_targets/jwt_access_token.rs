//! Any bytes as a JWT access token (RFC 9068), through the engine's validation (which takes the
//! JWT path for a token starting with `e`): an error or claims, never a panic. The first byte
//! picks what the rest is: 0, the token itself (header, signature and length checks); anything
//! else, a payload this engine's EdDSA key signs with `typ: at+jwt`, so that the claims parser
//! behind the signature check is reached too.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use oauth_proto::access_token::{KeyRing, TokenKey};
use oauth_proto::config::Config;
use oauth_proto::jose::{jws, Algorithm, KeySet};
use oauth_proto::random::CounterRandom;
use oauth_proto::store::NothingRevoked;
use oauth_proto::Engine;

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let signing = KeySet::generate(
            &[Algorithm::Es256, Algorithm::EdDsa],
            &mut CounterRandom::new(1),
        )
        .expect("key generation");
        let ring = KeyRing::new(TokenKey::new(1, &[7u8; 32]).expect("key"), vec![]).expect("ring");
        let config = Config {
            jwt_access_token_alg: Some(Algorithm::EdDsa),
            ..Config::default()
        };
        Engine::new(config, ring, signing).expect("engine")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let engine = engine();
    let token = if mode == 0 {
        match std::str::from_utf8(rest) {
            Ok(t) => t.to_owned(),
            Err(_) => return,
        }
    } else {
        let keys = engine.signing_keys();
        let key = keys.signing_key(Algorithm::EdDsa).expect("an EdDSA key");
        jws::sign(key, "at+jwt", rest, &mut CounterRandom::new(2))
    };
    let _ = engine.validate_access_token(&token, 1_000_000, &NothingRevoked);
});
