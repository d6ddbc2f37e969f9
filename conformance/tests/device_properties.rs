//! Properties of the device flow: user code normalization, and `slow_down` against a model of the
//! polling interval.

use conformance::*;
use oauth_proto::device::{generate_user_code, normalize_user_code};
use oauth_proto::random::CounterRandom;
use quickcheck::QuickCheck;

#[test]
fn normalization_recovers_any_typing_of_a_code() {
    fn prop(seed: u64, mask: Vec<u8>) -> bool {
        // CounterRandom overflows near u64::MAX (a test-only RNG); keep seeds small.
        let code = generate_user_code(&mut CounterRandom::new(seed % (1 << 32)));
        let mut typed = String::new();
        for (i, c) in code.chars().enumerate() {
            let m = mask.get(i).copied().unwrap_or(0);
            typed.push(if m & 1 == 1 {
                c.to_ascii_lowercase()
            } else {
                c
            });
            match m >> 1 & 3 {
                1 => typed.push('-'),
                2 => typed.push(' '),
                _ => {}
            }
        }
        normalize_user_code(&typed).as_deref() == Some(code.as_str())
    }
    QuickCheck::new()
        .tests(500)
        .quickcheck(prop as fn(u64, Vec<u8>) -> bool);
}

#[test]
fn normalization_is_total() {
    fn prop(input: String) -> bool {
        match normalize_user_code(&input) {
            None => true,
            Some(code) => {
                code.len() == 8 && code.bytes().all(|b| b"BCDFGHJKLMNPQRSTVWXZ".contains(&b))
            }
        }
    }
    QuickCheck::new()
        .tests(1000)
        .quickcheck(prop as fn(String) -> bool);
}

#[test]
fn slow_down_matches_the_interval_model() {
    // Gaps between polls; the model: a poll sooner than `interval` after the previous one is
    // slow_down and adds 5 to the interval; any other is authorization_pending.
    fn prop(gaps: Vec<u8>) -> bool {
        let mut h = Harness::default();
        h.device_client();
        let (device_code, _) = h.start_device();
        let mut interval = 5u64;
        let mut last: Option<u64> = None;
        for gap in gaps.into_iter().take(40) {
            h.now += u64::from(gap % 30);
            if h.now >= T0 + 1800 {
                break;
            }
            let r = h.poll(&device_code);
            let expected = match last {
                Some(t) if h.now < t + interval => {
                    interval += 5;
                    "slow_down"
                }
                _ => "authorization_pending",
            };
            last = Some(h.now);
            if json(&r)["error"] != expected
                || h.device_record(&device_code).unwrap().interval != interval
            {
                return false;
            }
        }
        true
    }
    QuickCheck::new()
        .tests(100)
        .quickcheck(prop as fn(Vec<u8>) -> bool);
}

#[test]
fn arbitrary_tokens_are_inactive_and_revocable() {
    fn prop(token: String) -> bool {
        let mut h = Harness::default();
        let rs = h.resource_server();
        let body = serde_urlencoded::to_string([("token", token.as_str())]).unwrap();
        let i = h.introspect(&body, Some(&rs));
        let r = h.revoke(&body, Some(&rs));
        let empty = token.is_empty();
        if empty {
            i.status == 400 && r.status == 400
        } else {
            i.status == 200 && json(&i) == serde_json::json!({"active": false}) && r.status == 200
        }
    }
    QuickCheck::new()
        .tests(300)
        .quickcheck(prop as fn(String) -> bool);
}
