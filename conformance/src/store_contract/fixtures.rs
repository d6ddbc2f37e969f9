//! Record builders and small test utilities shared by the store contract and store-specific tests.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use oauth_directory::UserRecord;
use oauth_proto::client::{AuthMethod, ClientKind, ClientRecord, GrantType};
use oauth_proto::pkce::PkceMethod;
use oauth_proto::scope::Scope;
use oauth_proto::secret::SecretHash;
use oauth_proto::store::{
    CodeRecord, DeviceRecord, DeviceStatus, GrantId, GrantRecord, PkceChallenge, RefreshFamily,
    Successor,
};

/// The hash stores keep for the secret `name`.
pub fn hash(name: &str) -> SecretHash {
    SecretHash::of(name)
}

/// A grant id derived from a number.
pub fn grant_id(n: u64) -> GrantId {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&n.to_be_bytes());
    id[8..].copy_from_slice(&(!n).to_le_bytes());
    GrantId(id)
}

/// A scope from a literal.
pub fn scope(s: &str) -> Scope {
    Scope::parse(s).expect("valid scope literal")
}

/// A confidential client.
pub fn client(id: &str) -> ClientRecord {
    ClientRecord {
        client_id: id.to_string(),
        name: format!("Client {id}"),
        kind: ClientKind::Confidential,
        secret_hash: Some(hash(&format!("secret of {id}"))),
        secret_expires_at: None,
        auth_method: AuthMethod::ClientSecretBasic,
        redirect_uris: vec![format!("https://{id}.example/cb")],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scope: scope("openid profile email"),
        require_pkce: true,
        resource_server: false,
        registration_token_hash: None,
        created_at: 100,
        metadata: serde_json::Map::new(),
        unused_expires_at: None,
        access_token_format: Default::default(),
    }
}

/// An authorization code for `client` and `subject`.
pub fn code(name: &str, grant: u64, client: &str, subject: &str, expires_at: u64) -> CodeRecord {
    CodeRecord {
        hash: hash(name),
        grant_id: grant_id(grant),
        client_id: client.to_string(),
        subject: subject.to_string(),
        scope: scope("openid profile"),
        redirect_uri: format!("https://{client}.example/cb"),
        redirect_uri_sent: true,
        challenge: Some(PkceChallenge {
            method: PkceMethod::S256,
            value: format!("challenge-{name}"),
        }),
        credential_version: 0,
        issued_at: 100,
        expires_at,
        resources: vec!["imap://mail.example".to_string()],
        // An OpenID Connect nonce with characters a store might mangle, kept byte for byte.
        nonce: Some(format!("n-{name} \"é\u{1F600}\\")),
        auth_time: Some(90),
        // How and in which session the user signed in (ID token `amr`, `sid`), carried as is.
        amr: vec!["pwd".to_string()],
        sid: Some(format!("sid-{name}")),
    }
}

/// A grant.
pub fn grant(n: u64, client: &str, subject: &str, expires_at: u64) -> GrantRecord {
    GrantRecord {
        grant_id: grant_id(n),
        client_id: client.to_string(),
        subject: subject.to_string(),
        scope: scope("openid profile offline_access"),
        credential_version: 0,
        created_at: 100,
        expires_at,
        revoked_at: None,
        resources: Vec::new(),
        auth_time: Some(90),
        amr: vec!["pwd".to_string(), "otp".to_string()],
        sid: Some(format!("sid-{n}")),
    }
}

/// The hash of grant `grant`'s family secret (what [`RefreshFamily::family`] keeps).
pub fn family_hash(grant: u64) -> SecretHash {
    hash(&format!("family secret of grant {grant}"))
}

/// The refresh tokens of grant `grant` as issuing them leaves them: `name` is the current token,
/// none was rotated out yet, and the family carries [`family_hash`]`(grant)`.
pub fn refresh(name: &str, grant: u64, issued_at: u64, expires_at: u64) -> RefreshFamily {
    RefreshFamily {
        grant_id: grant_id(grant),
        family: Some(family_hash(grant)),
        current: hash(name),
        issued_at,
        expires_at,
        previous: None,
    }
}

/// The token `name` as a rotation's new current token.
pub fn successor(name: &str, issued_at: u64, expires_at: u64) -> Successor {
    Successor {
        hash: hash(name),
        issued_at,
        expires_at,
    }
}

/// A device authorization; its user code is `name` upper-cased.
pub fn device(name: &str, client: &str, status: DeviceStatus, expires_at: u64) -> DeviceRecord {
    DeviceRecord {
        device_code_hash: hash(name),
        user_code_hash: hash(&name.to_uppercase()),
        client_id: client.to_string(),
        scope: scope("openid"),
        issued_at: 100,
        expires_at,
        interval: 5,
        last_poll: None,
        status,
        revision: 0,
        resources: Vec::new(),
    }
}

/// A device approval by `subject`.
pub fn approved(subject: &str, grant: u64) -> DeviceStatus {
    DeviceStatus::Approved {
        subject: subject.to_string(),
        credential_version: 0,
        grant_id: grant_id(grant),
        auth_time: Some(95),
        amr: vec!["pwd".to_string()],
    }
}

/// A user account.
pub fn user(name: &str) -> UserRecord {
    UserRecord {
        username: name.to_string(),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA${name}"),
        created_at: 100,
        // Set, so that every store is seen to keep it.
        email: Some(format!("{name}@example.com")),
        name: Some(format!("{name} Example")),
    }
}

/// A directory removed (with its content) when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new, empty, uniquely named directory under `base`.
    pub fn new_in(base: impl AsRef<Path>, tag: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = base
            .as_ref()
            .join(format!("{tag}-{}-{n}-{nanos}", std::process::id()));
        std::fs::create_dir_all(base.as_ref()).expect("create temp base");
        TempDir(path)
    }

    /// Its path (the directory itself is left for the store to create).
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future to completion on this thread (enough to drive an `AsyncStore` in tests).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(out) => return out,
            Poll::Pending => std::thread::park(),
        }
    }
}
