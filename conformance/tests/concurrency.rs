//! Atomicity under contention: many threads redeem one code, or refresh with one token.

use std::sync::{Arc, Barrier};

use conformance::*;
use oauth_proto::flow::drive;
use oauth_proto::http::HttpRequest;
use oauth_proto::random::CounterRandom;

const THREADS: usize = 16;

fn race(h: &Harness, body: String, auth: String) -> Vec<u16> {
    let barrier = Arc::new(Barrier::new(THREADS));
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let (barrier, body, auth) = (barrier.clone(), body.clone(), auth.clone());
                let (engine, store, now) = (&h.engine, &h.store, h.now);
                scope.spawn(move || {
                    let mut rng = CounterRandom::new(1_000_000 * (i as u64 + 1));
                    barrier.wait();
                    let flow =
                        engine.token(HttpRequest::form_post(body).with_authorization(auth), now);
                    drive(flow, store, &mut rng).unwrap().status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn g73_concurrent_redemptions_of_one_code_give_exactly_one_token() {
    for round in 0..20 {
        let mut h = Harness::default();
        let s = h.confidential_client();
        let code = h.code_for("response_type=code&client_id=web&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256", "alice");
        let body = format!("grant_type=authorization_code&code={code}&code_verifier={VERIFIER}");
        let statuses = race(&h, body, basic("web", s.expose()));
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "round {round}: {statuses:?}"
        );
        assert_eq!(statuses.iter().filter(|s| **s == 400).count(), THREADS - 1);
    }
}

#[test]
fn concurrent_refreshes_with_one_token_give_one_winner_and_revoke_the_family() {
    for round in 0..20 {
        let mut h = Harness::default();
        h.public_client();
        let code = h.code_for("response_type=code&client_id=app&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256", "alice");
        let r = h.token(
            &format!(
                "grant_type=authorization_code&code={code}&client_id=app&code_verifier={VERIFIER}"
            ),
            None,
        );
        let rt = json(&r)["refresh_token"].as_str().unwrap().to_owned();
        h.now += 1;
        let body = format!("grant_type=refresh_token&refresh_token={rt}&client_id=app");
        let barrier = Arc::new(Barrier::new(THREADS));
        let statuses: Vec<u16> = std::thread::scope(|scope| {
            (0..THREADS)
                .map(|i| {
                    let (barrier, body) = (barrier.clone(), body.clone());
                    let (engine, store, now) = (&h.engine, &h.store, h.now);
                    scope.spawn(move || {
                        let mut rng = CounterRandom::new(1_000_000 * (i as u64 + 1));
                        barrier.wait();
                        drive(
                            engine.token(HttpRequest::form_post(body), now),
                            store,
                            &mut rng,
                        )
                        .unwrap()
                        .status
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect()
        });
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "round {round}: {statuses:?}"
        );
    }
}
