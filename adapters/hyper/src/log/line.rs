//! One log line per event, in the shape of `tracing_subscriber`'s default format:
//! `2026-11-24T15:52:33.123456Z  INFO oauth_server::http::routes: request method=POST path=/token
//! status=200 latency_us=57`.
//!
//! Written by hand rather than with the default formatter because that one costs several thousand
//! instructions per event (calendar arithmetic for every timestamp, generic field formatting), which
//! at one access line per request was a sizeable part of a token request. Here the date and time
//! are computed once per second per thread, and numbers and strings go straight to the line.
//!
//! Values are written with control characters escaped (`\n` becomes `\u{a}`), so no value can
//! start a fake line or send terminal escape sequences; string values are quoted as `Debug` does,
//! as the default format does too.

use std::cell::RefCell;
use std::fmt::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The event format (spans are not shown: the server has none).
#[derive(Clone, Copy, Debug, Default)]
pub struct Line;

impl<S, N> FormatEvent<S, N> for Line
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        write_timestamp(&mut w, SystemTime::now())?;
        w.write_str(level_label(*meta.level()))?;
        w.write_str(meta.target())?;
        w.write_char(':')?;
        let mut fields = Fields {
            w: &mut w,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        w.write_char('\n')
    }
}

/// The level, right-aligned in five columns between single spaces, as the default format does.
fn level_label(level: Level) -> &'static str {
    match level {
        Level::ERROR => " ERROR ",
        Level::WARN => "  WARN ",
        Level::INFO => "  INFO ",
        Level::DEBUG => " DEBUG ",
        Level::TRACE => " TRACE ",
    }
}

thread_local! {
    /// The second last formatted on this thread, and its `YYYY-MM-DDTHH:MM:SS`.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// RFC 3339 UTC with microseconds, e.g. `2026-11-24T15:52:33.123456Z`.
fn write_timestamp(w: &mut impl Write, now: SystemTime) -> fmt::Result {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    SECOND.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs {
            cached.1.clear();
            let t = time::OffsetDateTime::from(now);
            let _ = write!(
                cached.1,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            );
            cached.0 = secs;
        }
        w.write_str(&cached.1)
    })?;
    // `.` and six digits, zero-padded: the digits of 1_000_000 + micros after its leading 1.
    let mut digits = itoa::Buffer::new();
    let fraction = digits.format(1_000_000 + since.subsec_micros());
    w.write_char('.')?;
    w.write_str(&fraction[1..])?;
    w.write_char('Z')
}

/// Writes `message` first, then ` name=value` for each other field.
struct Fields<'w, 'a> {
    w: &'w mut Writer<'a>,
    result: fmt::Result,
}

impl Fields<'_, '_> {
    /// Writes ` name=` (nothing but the space for the message), then the value through `value`.
    fn field(
        &mut self,
        field: &Field,
        value: impl FnOnce(&mut Escaped<'_, Writer<'_>>) -> fmt::Result,
    ) {
        if self.result.is_err() {
            return;
        }
        self.result = (|| {
            self.w.write_char(' ')?;
            if field.name() != "message" {
                self.w.write_str(field.name())?;
                self.w.write_char('=')?;
            }
            value(&mut Escaped(&mut *self.w))
        })();
    }
}

impl Visit for Fields<'_, '_> {
    // Numbers and booleans have nothing to escape and skip the formatting machinery.
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |w| w.0.write_str(itoa::Buffer::new().format(value)));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |w| w.0.write_str(itoa::Buffer::new().format(value)));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |w| {
            w.0.write_str(if value { "true" } else { "false" })
        });
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.field(field, |w| w.write_str(value));
        } else {
            self.field(field, |w| write!(w, "{value:?}"));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.field(field, |w| write!(w, "{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |w| write!(w, "{value:?}"));
    }
}

/// Passes text through with control characters written as `\u{..}` escapes.
struct Escaped<'a, W: Write>(&'a mut W);

impl<W: Write> Write for Escaped<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Nearly every value is printable ASCII: one pass over the bytes, no decoding.
        if s.bytes().all(|b| (b' '..0x7f).contains(&b)) {
            return self.0.write_str(s);
        }
        let mut rest = s;
        while let Some(i) = rest.find(char::is_control) {
            self.0.write_str(&rest[..i])?;
            let c = rest[i..].chars().next().unwrap_or('\0');
            write!(self.0, "{}", c.escape_unicode())?;
            rest = &rest[i + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        let mut s = String::new();
        let t = UNIX_EPOCH + Duration::new(1_795_535_553, 123_456_789);
        write_timestamp(&mut s, t).unwrap();
        assert_eq!(s, "2026-11-24T15:52:33.123456Z");
        // The same second again reuses the cached part; the next one does not.
        s.clear();
        write_timestamp(&mut s, t + Duration::from_millis(1)).unwrap();
        assert_eq!(s, "2026-11-24T15:52:33.124456Z");
        s.clear();
        write_timestamp(&mut s, t + Duration::from_secs(1)).unwrap();
        assert_eq!(s, "2026-11-24T15:52:34.123456Z");
        s.clear();
        write_timestamp(&mut s, UNIX_EPOCH).unwrap();
        assert_eq!(s, "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn control_characters_are_escaped() {
        let mut s = String::new();
        write!(Escaped(&mut s), "a\nb\x1b[31mc\u{7f}é").unwrap();
        assert_eq!(s, "a\\u{a}b\\u{1b}[31mc\\u{7f}é");
    }

    #[test]
    fn events_format_like_the_default_subscriber() {
        use std::sync::{Arc, Mutex};

        #[derive(Clone, Default)]
        struct Capture(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Capture {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let capture = Capture::default();
        let out = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(Line)
            .with_writer(move || out.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let path = "/token\nfake line";
            tracing::info!(method = %"POST", path = %path, status = 200u16, latency_us = 57u64, "request");
            tracing::warn!(endpoint = "token", ok = false, delta = -3i64, "too many");
        });
        let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let (stamp, rest) = lines[0].split_once(' ').unwrap();
        assert_eq!(stamp.len(), "2026-11-24T15:52:33.123456Z".len(), "{stamp}");
        assert!(stamp.ends_with('Z'));
        assert_eq!(
            rest,
            " INFO oauth_server::log::line::tests: request method=POST path=/token\\u{a}fake line status=200 latency_us=57"
        );
        assert!(
            lines[1].ends_with(
                "  WARN oauth_server::log::line::tests: too many endpoint=\"token\" ok=false delta=-3"
            ),
            "{}",
            lines[1]
        );
    }
}
