//! Transcripts: request and response pairs of a flow, under a fixed clock and a deterministic RNG,
//! compared byte for byte with a golden file in `conformance/transcripts/`.
//!
//! A change in behaviour (a header, an error description, a token's format) shows up as a readable
//! diff of that file. After an intended change, regenerate with `UPDATE_TRANSCRIPTS=1 cargo test`
//! and review the diff like code.

use std::fmt::Write as _;
use std::path::PathBuf;

use oauth_proto::authorize::AuthorizeOutcome;
use oauth_proto::response::Response;

/// A transcript being recorded.
#[derive(Default)]
pub struct Transcript {
    text: String,
}

impl Transcript {
    /// Records a request line with optional headers and body.
    pub fn request(&mut self, at: u64, line: &str, headers: &[(&str, &str)], body: &str) {
        let _ = writeln!(self.text, ">>> t={at} {line}");
        for (k, v) in headers {
            let _ = writeln!(self.text, "{k}: {v}");
        }
        if !body.is_empty() {
            let _ = writeln!(self.text, "\n{body}");
        }
    }

    /// Records a response.
    pub fn response(&mut self, r: &Response) {
        let _ = writeln!(self.text, "<<< {}", r.status);
        for (k, v) in &r.headers {
            let _ = writeln!(self.text, "{k}: {v}");
        }
        if !r.body.is_empty() {
            let pretty = serde_json::from_str::<serde_json::Value>(&r.body)
                .and_then(|v| serde_json::to_string_pretty(&v))
                .unwrap_or_else(|_| r.body.clone());
            let _ = writeln!(self.text, "\n{pretty}");
        }
        self.text.push('\n');
    }

    /// Records how an authorization request ended.
    pub fn outcome(&mut self, o: &AuthorizeOutcome) {
        match o {
            AuthorizeOutcome::Redirect(r) => self.response(r),
            AuthorizeOutcome::ErrorPage(e) => {
                let _ = writeln!(self.text, "<<< error page: {e}\n");
            }
            AuthorizeOutcome::ErrorLink(l) => {
                let _ = writeln!(
                    self.text,
                    "<<< error page: {}, with a link to {}\n",
                    l.error, l.location
                );
            }
            AuthorizeOutcome::Consent(p) => {
                let _ = writeln!(
                    self.text,
                    "<<< consent: {}\n",
                    serde_json::to_string_pretty(p).unwrap_or_default()
                );
            }
            // A new outcome shows up in the transcript, so the comparison fails and names it.
            other => {
                let _ = writeln!(self.text, "<<< unrecorded outcome: {other:?}\n");
            }
        }
    }

    /// A free-form note.
    pub fn note(&mut self, text: &str) {
        let _ = writeln!(self.text, "# {text}\n");
    }

    /// Compares with `transcripts/<name>.txt`, or writes it when `UPDATE_TRANSCRIPTS` is set.
    pub fn check(&self, name: &str) {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("transcripts")
            .join(format!("{name}.txt"));
        if std::env::var_os("UPDATE_TRANSCRIPTS").is_some() {
            std::fs::create_dir_all(path.parent().expect("has a parent"))
                .expect("create transcripts/");
            std::fs::write(&path, &self.text).expect("write transcript");
            return;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            panic!(
                "{} is missing: run with UPDATE_TRANSCRIPTS=1",
                path.display()
            )
        });
        if expected != self.text {
            let first = expected
                .lines()
                .zip(self.text.lines())
                .position(|(a, b)| a != b);
            panic!(
                "transcript {name} changed (first differing line {:?}); rerun with UPDATE_TRANSCRIPTS=1 and review the diff\n--- actual ---\n{}",
                first.map(|l| l + 1),
                self.text
            );
        }
    }
}
