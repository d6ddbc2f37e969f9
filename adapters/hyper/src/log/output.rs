//! Getting log lines to standard error cheaply, without losing or delaying them.
//!
//! A thread that writes a line either writes it straight away (one `write` under the stderr lock),
//! or, once it has shown it is a runtime worker by going idle through
//! [`flush_idle_thread`], appends it to a buffer of its own. That buffer is written out in one
//! `write` when the worker next goes idle, when it stops ([`flush_thread`]), or when it holds
//! [`FLUSH_BYTES`]. So under load many lines share one system call and no other thread is woken; an
//! idle server still shows every line at once, as a worker goes idle right after the request it
//! logged. A line waits at most as long as its worker stays busy without going idle, which under
//! load is bounded by the buffer: every request adds a line.
//!
//! Lines are whole when written (the formatter hands over one complete line per event), so lines
//! from different threads never interleave. Nothing is dropped: if standard error blocks (a full
//! pipe), the writing worker waits, as nginx's buffered access log does. Write errors (standard
//! error closed) are ignored: a log that cannot be written must not stop the server.

use std::cell::RefCell;
use std::io::Write;

use tracing_subscriber::fmt::MakeWriter;

/// A worker's buffer is written out once it holds this many bytes.
pub const FLUSH_BYTES: usize = 32 * 1024;

/// One thread's lines not yet written.
#[derive(Debug)]
struct Pending {
    /// True once this thread has gone idle through a runtime's park hook, which will flush it.
    buffered: bool,
    bytes: Vec<u8>,
}

impl Pending {
    const fn new() -> Self {
        Pending {
            buffered: false,
            bytes: Vec::new(),
        }
    }

    /// Takes a line. Returns what must be written now: the line itself on a thread that does not
    /// buffer, or the whole buffer once it is full.
    fn push(&mut self, line: &[u8]) -> Option<Vec<u8>> {
        if !self.buffered {
            return Some(line.to_vec());
        }
        self.bytes.extend_from_slice(line);
        (self.bytes.len() >= FLUSH_BYTES).then(|| self.take())
    }

    /// Everything buffered, leaving the buffer empty.
    fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes)
    }
}

thread_local! {
    static PENDING: RefCell<Pending> = const { RefCell::new(Pending::new()) };
}

fn write_out(bytes: &[u8]) {
    if !bytes.is_empty() {
        let _ = std::io::stderr().lock().write_all(bytes);
    }
}

/// Runs `f` on this thread's buffer; `None` when the thread is exiting or the buffer is in use (a
/// line logged while writing out), and the caller then writes directly.
fn with_pending<T>(f: impl FnOnce(&mut Pending) -> T) -> Option<T> {
    PENDING
        .try_with(|p| p.try_borrow_mut().ok().map(|mut p| f(&mut p)))
        .ok()
        .flatten()
}

/// The runtime's park hook: writes this worker's lines, and buffers its later lines until the next
/// time it goes idle.
pub fn flush_idle_thread() {
    flush(true);
}

/// Writes this thread's lines and writes its later lines directly (a worker that stops).
pub fn flush_thread() {
    flush(false);
}

/// Writes out this thread's buffer in place (keeping its allocation for the next lines) and sets
/// whether it buffers from now on. A line logged meanwhile finds the buffer in use and is written
/// directly.
fn flush(buffered: bool) {
    let _ = with_pending(|p| {
        p.buffered = buffered;
        write_out(&p.bytes);
        p.bytes.clear();
    });
}

/// Appends a line to this thread's buffer when it has one, else writes it.
fn emit(line: &[u8]) {
    match with_pending(|p| p.push(line)) {
        Some(Some(bytes)) => write_out(&bytes),
        Some(None) => {}
        None => write_out(line),
    }
}

/// The subscriber's writer: standard error, through the calling thread's buffer.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stderr;

/// One event's writer (the formatter writes each line with a single `write_all`).
#[derive(Debug)]
pub struct LineWriter;

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        emit(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_pass_straight_through_until_the_thread_buffers() {
        let mut p = Pending::new();
        assert_eq!(p.push(b"direct\n").as_deref(), Some(&b"direct\n"[..]));
        p.buffered = true;
        assert_eq!(p.push(b"one\n"), None);
        assert_eq!(p.push(b"two\n"), None);
        assert_eq!(p.take(), b"one\ntwo\n");
        assert_eq!(p.take(), b"");
    }

    #[test]
    fn a_full_buffer_is_written_without_waiting_for_idle() {
        let mut p = Pending::new();
        p.buffered = true;
        let line = [b'x'; 1024];
        for _ in 0..FLUSH_BYTES / 1024 - 1 {
            assert_eq!(p.push(&line), None);
        }
        let out = p.push(&line).expect("full");
        assert_eq!(out.len(), FLUSH_BYTES);
        assert!(p.bytes.is_empty());
    }
}
