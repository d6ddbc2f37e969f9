//! From protocol lines to [`ClientInput`]: base64 (RFC 4648 §4, padded) and the cancel line.
//!
//! IMAP (RFC 3501 §6.2.2), SMTP (RFC 4954), POP3 (RFC 5034) and ManageSieve (RFC 5804, after
//! unquoting the string) all carry client responses as one base64 line, with `*` meaning cancel.
//! An initial response (IMAP SASL-IR, RFC 4959; SMTP `AUTH mech initial`) uses `=` for an empty
//! response and cannot cancel. Lines are bounded before decoding so that no allocation follows a
//! hostile length.

use base64::Engine as _;

use super::{ParseError, MAX_MESSAGE_LEN};

/// One client message, as decoded from the wire by [`decode_client_line`] or
/// [`decode_initial_response`]. `Debug` shows only the length of a response.
#[derive(Clone, PartialEq, Eq)]
pub enum ClientInput {
    /// The decoded bytes of a response.
    Response(Vec<u8>),
    /// The client cancelled the exchange (`*`).
    Cancel,
    /// The line could not be decoded (bad base64, too long).
    Invalid(ParseError),
}

impl std::fmt::Debug for ClientInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientInput::Response(bytes) => write!(f, "Response(<{} bytes>)", bytes.len()),
            ClientInput::Cancel => f.write_str("Cancel"),
            ClientInput::Invalid(e) => write!(f, "Invalid({e:?})"),
        }
    }
}

const MAX_LINE: usize = MAX_MESSAGE_LEN.div_ceil(3) * 4;

/// Decodes a client continuation line (without its line ending): `*` cancels, anything else must
/// be base64. An empty line is an empty response (XOAUTH2's acknowledgement of an error challenge).
pub fn decode_client_line(line: &[u8]) -> ClientInput {
    if line == b"*" {
        return ClientInput::Cancel;
    }
    decode(line)
}

/// Decodes the initial response given with the command (SASL-IR): `=` is an empty response,
/// anything else must be base64.
pub fn decode_initial_response(arg: &[u8]) -> ClientInput {
    if arg == b"=" {
        return ClientInput::Response(Vec::new());
    }
    decode(arg)
}

fn decode(line: &[u8]) -> ClientInput {
    if line.len() > MAX_LINE {
        return ClientInput::Invalid(ParseError::TooLong);
    }
    match base64::engine::general_purpose::STANDARD.decode(line) {
        Ok(bytes) if bytes.len() > MAX_MESSAGE_LEN => ClientInput::Invalid(ParseError::TooLong),
        Ok(bytes) => ClientInput::Response(bytes),
        Err(_) => ClientInput::Invalid(ParseError::BadBase64),
    }
}
