//! The pages a person sees in a browser: the authorization and device verification pages, the
//! sign-in behind them, and their server-side sessions.
//!
//! `logout` ends a browser's session at a relying party's request (RP-initiated logout), and
//! `backchannel` tells the relying parties of every session that ends (back-channel logout).
//! The two flows (`authorize`, `device`) keep each request waiting for the user as a page in a
//! browser session (`sessions`, kept in memory or, on PostgreSQL, shared by every node), check
//! sign-ins with limits on guessing (`login`), and render their markup (`views`) from the
//! escaping and frame in `html`. They are separate from the HTTP
//! plumbing ([`crate::http`]) because they hold the browser's state (cookies, CSRF tokens,
//! pending requests) and the rules that keep markup free of injected content, which no JSON
//! endpoint has. Nothing here is public but [`INVALID_CODE`], which the tests look for.

pub(crate) mod authorize;
pub mod backchannel;
pub(crate) mod device;
pub(crate) mod html;
pub(crate) mod login;
pub(crate) mod logout;
pub(crate) mod memory_sessions;
pub(crate) mod sessions;
pub(crate) mod shared_sessions;
pub(crate) mod views;

pub use device::INVALID_CODE;
