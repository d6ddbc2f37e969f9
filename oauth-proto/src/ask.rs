//! Typed store questions for endpoint code.
//!
//! Each helper sends one [`Op`] through [`Cx::ask`] and unpacks the matching [`Reply`], borrowed
//! from the flow's recorded answers (no copy per replay; callers clone what they must own). A store
//! that answers with the wrong variant breaks the contract; that is a server fault, reported as
//! `server_error` rather than a panic. [`Halt`] lets endpoint code use `?` for both "suspend until
//! the store answers" and "answer with this OAuth error".

use crate::client::ClientRecord;
use crate::client_id_document;
use crate::config::Config;
use crate::error::{ErrorCode, OAuthError};
use crate::flow::{Cx, Suspend};
use crate::refresh_token::Presented;
use crate::secret::SecretHash;
use crate::store::{
    CodeTake, DeviceLookup, DeviceRecord, GrantId, Op, RefreshGrant, Reply, RevocationStatus,
    Successor,
};

/// Why endpoint code stopped early.
#[derive(Debug)]
pub(crate) enum Halt {
    /// Waiting for the store.
    Suspend(Suspend),
    /// Answer with this error.
    Error(OAuthError),
}

impl From<Suspend> for Halt {
    fn from(s: Suspend) -> Self {
        Halt::Suspend(s)
    }
}

impl From<OAuthError> for Halt {
    fn from(e: OAuthError) -> Self {
        Halt::Error(e)
    }
}

/// Converts endpoint code's result into a flow result, turning errors into their response.
pub(crate) fn finish<T>(
    result: Result<T, Halt>,
    on_error: impl FnOnce(OAuthError) -> T,
) -> Result<T, Suspend> {
    match result {
        Ok(v) => Ok(v),
        Err(Halt::Error(e)) => Ok(on_error(e)),
        Err(Halt::Suspend(s)) => Err(s),
    }
}

fn contract_broken() -> Halt {
    Halt::Error(OAuthError::new(
        ErrorCode::ServerError,
        "the store answered out of contract",
    ))
}

/// The client `client_id` names, for a flow that uses it: described by its metadata document
/// ([`Op::FetchClientDocument`]) when the id is an `https` URL and the configuration accepts
/// those ([`crate::client_id_document`]: a bad URL or document is `invalid_client`), else as
/// registered ([`registered_client`]).
pub(crate) fn client<'a>(
    cx: &mut Cx<'a>,
    config: &Config,
    client_id: &str,
) -> Result<Option<&'a ClientRecord>, Halt> {
    if !by_document(config, client_id) {
        return registered_client(cx, client_id);
    }
    client_id_document::check_url(client_id)?;
    let now = cx.now();
    match cx.ask(|| Op::FetchClientDocument {
        url: client_id.to_owned(),
    })? {
        Reply::ClientDocument(document) => Ok(Some(document.client(client_id, config, now)?)),
        _ => Err(contract_broken()),
    }
}

/// As [`client`], but answered without asking when an earlier answer already holds what
/// [`Op::GetClient`] would answer for `client_id`: `known` is such an answer (the client id it
/// is for, and the record, `None` for no client), e.g. a refresh token's [`RefreshGrant::client`].
/// A client described by its metadata document is always fetched as [`client`] does.
pub(crate) fn client_known<'a>(
    cx: &mut Cx<'a>,
    config: &Config,
    client_id: &str,
    known: Option<(&str, Option<&'a ClientRecord>)>,
) -> Result<Option<&'a ClientRecord>, Halt> {
    match known {
        Some((id, record)) if id == client_id && !by_document(config, client_id) => Ok(record),
        _ => client(cx, config, client_id),
    }
}

/// Whether [`client`] describes `client_id` by its metadata document (fetched, never stored)
/// rather than asking the store for it.
pub(crate) fn by_document(config: &Config, client_id: &str) -> bool {
    config.client_id_metadata_documents && client_id_document::is_document_url(client_id)
}

/// [`Op::GetClient`]: a client as the store keeps it (never one known by its metadata document).
pub(crate) fn registered_client<'a>(
    cx: &mut Cx<'a>,
    client_id: &str,
) -> Result<Option<&'a ClientRecord>, Halt> {
    match cx.ask(|| Op::GetClient {
        client_id: client_id.to_owned(),
    })? {
        Reply::Client(c) => Ok(c.as_deref()),
        _ => Err(contract_broken()),
    }
}

/// [`Op::GetClientWithStatus`]: what [`registered_client`] and [`revocation_status`] answer, in
/// one op.
pub(crate) fn client_with_status<'a>(
    cx: &mut Cx<'a>,
    client_id: &str,
    grant_id: GrantId,
    subject: &str,
) -> Result<(Option<&'a ClientRecord>, RevocationStatus), Halt> {
    match cx.ask(|| Op::GetClientWithStatus {
        client_id: client_id.to_owned(),
        grant_id,
        subject: subject.to_owned(),
    })? {
        Reply::ClientWithStatus { client, status } => Ok((client.as_deref(), *status)),
        _ => Err(contract_broken()),
    }
}

/// [`Op::GetSubject`]: the subject's credential version.
pub(crate) fn credential_version(cx: &mut Cx<'_>, subject: &str) -> Result<u32, Halt> {
    match cx.ask(|| Op::GetSubject {
        subject: subject.to_owned(),
    })? {
        Reply::Subject(s) => Ok(s.credential_version),
        _ => Err(contract_broken()),
    }
}

/// [`Op::TakeCode`].
pub(crate) fn take_code<'a>(cx: &mut Cx<'a>, hash: SecretHash) -> Result<&'a CodeTake, Halt> {
    match cx.ask(|| Op::TakeCode { hash })? {
        Reply::Code(c) => Ok(c),
        _ => Err(contract_broken()),
    }
}

/// [`Op::GetRefresh`] for the presented token: its family, its grant, the grant's client and
/// the revocation status, in one answer.
pub(crate) fn refresh<'a>(
    cx: &mut Cx<'a>,
    presented: &Presented,
) -> Result<Option<&'a RefreshGrant>, Halt> {
    match cx.ask(|| Op::GetRefresh {
        key: presented.key(),
    })? {
        Reply::Refresh(r) => Ok(r.as_ref()),
        _ => Err(contract_broken()),
    }
}

/// [`Op::RefreshPublic`] for the presented token of `grant_id`: the family after the op, and
/// whether it was rotated into `new`.
pub(crate) fn refresh_public<'a>(
    cx: &mut Cx<'a>,
    grant_id: GrantId,
    presented: SecretHash,
    client_id: &str,
    new: Successor,
) -> Result<(Option<&'a RefreshGrant>, bool), Halt> {
    match cx.ask(|| Op::RefreshPublic {
        grant_id,
        presented,
        client_id: client_id.to_owned(),
        new,
    })? {
        Reply::RefreshRotated { found, rotated } => Ok((found.as_ref(), *rotated)),
        _ => Err(contract_broken()),
    }
}

/// [`Op::RotateRefresh`]: whether the swap happened.
pub(crate) fn rotate_refresh(cx: &mut Cx<'_>, rotation: Rotation) -> Result<bool, Halt> {
    match cx.ask(|| Op::RotateRefresh {
        grant_id: rotation.grant_id,
        from: rotation.from,
        new: rotation.new,
        family: rotation.family,
        retry: rotation.retry,
    })? {
        Reply::Swapped(s) => Ok(*s),
        _ => Err(contract_broken()),
    }
}

/// The fields of an [`Op::RotateRefresh`].
pub(crate) struct Rotation {
    pub(crate) grant_id: GrantId,
    pub(crate) from: SecretHash,
    pub(crate) new: Successor,
    pub(crate) family: SecretHash,
    pub(crate) retry: bool,
}

/// [`Op::GetDevice`].
pub(crate) fn device<'a>(
    cx: &mut Cx<'a>,
    by: DeviceLookup,
) -> Result<Option<&'a DeviceRecord>, Halt> {
    match cx.ask(|| Op::GetDevice { by })? {
        Reply::Device(d) => Ok(d.as_ref()),
        _ => Err(contract_broken()),
    }
}

/// [`Op::SwapDevice`]: whether the swap happened. `record` builds the new record, only when the
/// swap is not answered yet.
pub(crate) fn swap_device(
    cx: &mut Cx<'_>,
    expected_revision: u64,
    record: impl FnOnce() -> DeviceRecord,
) -> Result<bool, Halt> {
    match cx.ask(|| Op::SwapDevice {
        expected_revision,
        record: record(),
    })? {
        Reply::Swapped(s) => Ok(*s),
        _ => Err(contract_broken()),
    }
}

/// [`Op::RevocationStatus`]: the revocation view for one access token's grant and subject.
pub(crate) fn revocation_status(
    cx: &mut Cx<'_>,
    grant_id: crate::store::GrantId,
    subject: &str,
) -> Result<crate::store::RevocationStatus, Halt> {
    match cx.ask(|| Op::RevocationStatus {
        grant_id,
        subject: subject.to_owned(),
    })? {
        Reply::RevocationStatus {
            access_revoked_at,
            credential_version,
        } => Ok(crate::store::RevocationStatus {
            access_revoked_at: *access_revoked_at,
            credential_version: *credential_version,
        }),
        _ => Err(contract_broken()),
    }
}

/// [`Op::UserClaims`]: what the embedder knows about the user `subject`.
pub(crate) fn user_claims<'a>(
    cx: &mut Cx<'a>,
    subject: &str,
) -> Result<Option<&'a crate::claims::UserClaims>, Halt> {
    match cx.ask(|| Op::UserClaims {
        subject: subject.to_owned(),
    })? {
        Reply::UserClaims(c) => Ok(c.as_ref()),
        _ => Err(contract_broken()),
    }
}

/// [`Op::Consents`]: the remembered consents of `subject`.
pub(crate) fn consents<'a>(
    cx: &mut Cx<'a>,
    subject: &str,
) -> Result<&'a [crate::store::ConsentRecord], Halt> {
    match cx.ask(|| Op::Consents {
        subject: subject.to_owned(),
    })? {
        Reply::Consents(c) => Ok(c),
        _ => Err(contract_broken()),
    }
}

/// [`Op::GrantsOfSession`]: a page of the live grants of `subject` from the session `sid`.
pub(crate) fn grants_of_session<'a>(
    cx: &mut Cx<'a>,
    subject: &str,
    sid: &str,
    after: Option<crate::store::GrantId>,
) -> Result<&'a [crate::store::SessionGrant], Halt> {
    let now = cx.now();
    match cx.ask(|| Op::GrantsOfSession {
        subject: subject.to_owned(),
        sid: sid.to_owned(),
        now,
        after,
    })? {
        Reply::SessionGrants(g) => Ok(g),
        _ => Err(contract_broken()),
    }
}
