//! Why a SASL client message was refused.
//!
//! One variant per way a message can be wrong, so tests can assert the exact reason and an embedder
//! can log it; none of them carries input bytes, so logging an error can never leak a token.

/// A client message that does not follow RFC 7628 §3.1 / RFC 5801 §4 (or the XOAUTH2 shape).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParseError {
    /// Longer than [`super::MAX_MESSAGE_LEN`]; not examined.
    TooLong,
    /// The message is empty.
    Empty,
    /// The client line is not valid base64 (RFC 4648 §4, padded).
    BadBase64,
    /// The GS2 header is not `[F,](n|y|p=name),[a=authzid],`, or uses the `F` flag.
    BadGs2Header,
    /// The client asked for channel binding (`p=`), which this server does not offer.
    ChannelBindingUnsupported,
    /// The authzid (or XOAUTH2 `user`) is empty, has a raw `,` or `=` or an escape other than
    /// `=2C`/`=3D`, is not UTF-8, or has a control character.
    BadIdentity,
    /// The GS2 header is not followed by `\x01`.
    MissingSeparator,
    /// A key is not `1*ALPHA`, or a pair has no `=`.
    BadKey,
    /// A value has a byte outside `VCHAR / SP / HTAB / CR / LF`.
    BadValue,
    /// A pair, or the message, is not ended by `\x01`.
    Unterminated,
    /// Bytes follow the final `\x01`.
    TrailingData,
    /// A key appears twice.
    DuplicateKey,
    /// `port` is not a decimal number in 0..=65535.
    BadPort,
    /// There is no `auth` pair, or it is empty.
    MissingAuth,
    /// `auth` does not use the `Bearer` scheme followed by a space.
    BadAuthScheme,
    /// The token after `Bearer ` is not an RFC 6750 `b64token`.
    BadToken,
    /// An XOAUTH2 message does not start with `user=`, or `user` is not followed by `auth=`.
    BadXOAuth2Layout,
}

impl ParseError {
    /// True for errors in the credential (`auth`) of an otherwise well-formed message. These are
    /// answered with an error challenge (RFC 7628 §4.3 does so for `auth=`); other errors end the
    /// exchange at once.
    pub fn is_credential_error(self) -> bool {
        matches!(
            self,
            ParseError::MissingAuth | ParseError::BadAuthScheme | ParseError::BadToken
        )
    }

    /// A short description for logs.
    pub fn description(self) -> &'static str {
        match self {
            ParseError::TooLong => "the SASL message is too long",
            ParseError::Empty => "the SASL message is empty",
            ParseError::BadBase64 => "the client response is not valid base64",
            ParseError::BadGs2Header => "the GS2 header is malformed",
            ParseError::ChannelBindingUnsupported => "channel binding is not supported",
            ParseError::BadIdentity => "the authorization identity is malformed",
            ParseError::MissingSeparator => "the GS2 header is not followed by \\x01",
            ParseError::BadKey => "a key is malformed",
            ParseError::BadValue => "a value has a forbidden character",
            ParseError::Unterminated => "the message is not terminated by \\x01",
            ParseError::TrailingData => "data follows the final \\x01",
            ParseError::DuplicateKey => "a key is repeated",
            ParseError::BadPort => "the port is not a number",
            ParseError::MissingAuth => "the auth value is missing",
            ParseError::BadAuthScheme => "the auth value does not use the Bearer scheme",
            ParseError::BadToken => "the bearer token is not a b64token",
            ParseError::BadXOAuth2Layout => "the XOAUTH2 message is not user=...\\x01auth=...",
        }
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.description())
    }
}

impl std::error::Error for ParseError {}
