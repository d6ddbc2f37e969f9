//! Password hashing: argon2id with the crate's default (OWASP-recommended) cost, stored as a PHC
//! string in the user record.
//!
//! Hashing is deliberately slow, so request handlers call these functions on a blocking thread.
//! [`verify_or_dummy`] spends the same time whether or not the account exists, so response time
//! does not tell an attacker which user names are real.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Shortest password accepted for a new or changed password.
pub const MIN_LEN: usize = 8;
/// Longest password accepted (argon2 takes any length, but a bound keeps the cost bounded).
pub const MAX_LEN: usize = 1024;

/// Hashes a password into a PHC string (argon2id, random 16-byte salt).
pub fn hash(password: &str) -> Result<String, String> {
    let salt = SaltString::encode_b64(&crate::rng::bytes::<16>()).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Checks a password against a PHC string. A malformed hash never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Verifies against the user's hash, or against a fixed dummy hash (always failing) when there
/// is no such user, so both cases cost one argon2 computation.
pub fn verify_or_dummy(password: &str, phc: Option<&str>) -> bool {
    match phc {
        Some(phc) => verify(password, phc),
        None => {
            verify(password, dummy_hash());
            false
        }
    }
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash(&crate::rng::token()).unwrap_or_default())
}

/// Checks a new password's length.
pub fn check_new(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_LEN {
        return Err(format!(
            "the password must be at least {MIN_LEN} characters"
        ));
    }
    if password.len() > MAX_LEN {
        return Err(format!("the password must be at most {MAX_LEN} bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse", &h));
        assert!(!verify("wrong horse", &h));
        assert!(!verify("x", "not a phc string"));
        assert!(!verify_or_dummy("correct horse", None));
        assert!(verify_or_dummy("correct horse", Some(&h)));
    }

    #[test]
    fn new_password_rules() {
        assert!(check_new("short").is_err());
        assert!(check_new("long enough").is_ok());
    }
}
