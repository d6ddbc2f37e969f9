//! Getting log lines to standard error cheaply, without losing them or holding them long.
//!
//! A runtime worker thread (registered by [`register_thread`], the runtime's thread-start hook)
//! appends its lines to a buffer of its own. A buffer is written out, in one `write`:
//! - by a flusher thread, at most [`FLUSH_AFTER`] after the first line that went into it;
//! - by the worker itself, as soon as it holds [`FLUSH_BYTES`];
//! - when the worker stops ([`unregister_thread`]), and by [`flush_all`] before the process exits.
//!
//! So under load many lines share one system call, a request never waits for a write or wakes
//! another thread (the flusher is woken once per batch, not per line), and a line appears at most
//! [`FLUSH_AFTER`] late. An idle server costs nothing: the flusher sleeps until a line arrives.
//! Other threads (the main thread at start-up, blocking tasks) write their lines straight away.
//!
//! Lines are whole when written (the formatter hands over one complete line per event), so lines
//! from different threads never interleave. Nothing is dropped: if standard error blocks (a full
//! pipe), the flusher waits, buffers grow to [`FLUSH_BYTES`], and then the workers themselves wait,
//! as nginx's buffered access log does. Write errors (standard error closed) are ignored: a log
//! that cannot be written must not stop the server.

use std::cell::RefCell;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::Thread;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// A worker writes its buffer out itself once it holds this many bytes.
pub const FLUSH_BYTES: usize = 32 * 1024;

/// The longest a buffered line waits before the flusher writes it.
pub const FLUSH_AFTER: Duration = Duration::from_millis(50);

/// One worker's lines not yet written.
type Buffer = Arc<Mutex<Vec<u8>>>;

/// The registered buffers and the flusher that empties them.
struct Flusher {
    buffers: Mutex<Vec<Buffer>>,
    /// Set when a line went into an empty buffer and the flusher has not taken it yet.
    armed: AtomicBool,
    /// Held while lines taken from the buffers are being written, so [`flush_all`] can wait for
    /// a flush in progress.
    writing: Mutex<()>,
    /// `None` if no thread could be started: buffers are then written when full and when their
    /// worker stops, so lines are late, not lost.
    thread: OnceLock<Option<Thread>>,
}

static FLUSHER: Flusher = Flusher {
    buffers: Mutex::new(Vec::new()),
    armed: AtomicBool::new(false),
    writing: Mutex::new(()),
    thread: OnceLock::new(),
};

thread_local! {
    static LOCAL: RefCell<Option<Buffer>> = const { RefCell::new(None) };
}

/// Locks, ignoring poisoning: a buffer of bytes stays valid whatever panicked while holding it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn write_out(bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    #[cfg(not(test))]
    let _ = std::io::stderr().lock().write_all(bytes);
    #[cfg(test)]
    lock(&tests::WRITTEN).extend_from_slice(bytes);
}

/// Gives this thread a buffer (the runtime's thread-start hook).
pub fn register_thread() {
    let buffer = Buffer::default();
    lock(&FLUSHER.buffers).push(buffer.clone());
    let _ = LOCAL.try_with(|l| *l.borrow_mut() = Some(buffer));
    start_flusher();
}

/// Writes out this thread's lines and takes its buffer away (the runtime's thread-stop hook).
pub fn unregister_thread() {
    let Ok(Some(buffer)) = LOCAL.try_with(|l| l.borrow_mut().take()) else {
        return;
    };
    lock(&FLUSHER.buffers).retain(|b| !Arc::ptr_eq(b, &buffer));
    let lines = std::mem::take(&mut *lock(&buffer));
    write_in_order(&lines);
}

/// Writes out every buffered line, waiting for a flush in progress (call before exiting).
pub fn flush_all() {
    write_buffers(&mut Vec::new());
}

/// Writes lines taken from a buffer after any batch being written, which may hold the same
/// thread's older lines. (Take them first: a buffer is never locked while waiting for `writing`.)
fn write_in_order(lines: &[u8]) {
    let _writing = lock(&FLUSHER.writing);
    write_out(lines);
}

/// Writes out every registered buffer, swapping each with `spare` (returned empty) so that both
/// keep their capacity.
fn write_buffers(spare: &mut Vec<u8>) {
    let _writing = lock(&FLUSHER.writing);
    for buffer in lock(&FLUSHER.buffers).iter() {
        std::mem::swap(spare, &mut *lock(buffer));
        write_out(spare);
        spare.clear();
    }
}

fn start_flusher() {
    FLUSHER.thread.get_or_init(|| {
        std::thread::Builder::new()
            .name("log-flusher".into())
            .spawn(flusher_loop)
            .ok()
            .map(|handle| handle.thread().clone())
    });
}

/// Sleeps until a line arrives, gives its batch [`FLUSH_AFTER`] to fill, writes every buffer out.
fn flusher_loop() {
    let mut spare = Vec::new();
    loop {
        while !FLUSHER.armed.load(Ordering::Acquire) {
            std::thread::park();
        }
        std::thread::sleep(FLUSH_AFTER);
        // Disarm before taking the buffers: a line that lands in an emptied buffer after this
        // arms the flusher again.
        FLUSHER.armed.store(false, Ordering::SeqCst);
        write_buffers(&mut spare);
    }
}

/// Appends a line to this thread's buffer, or writes it when the thread has none.
fn emit(line: &[u8]) {
    let pushed = LOCAL.try_with(|l| {
        let local = l.borrow();
        let buffer = local.as_ref()?;
        let mut bytes = lock(buffer);
        let was_empty = bytes.is_empty();
        bytes.extend_from_slice(line);
        if bytes.len() >= FLUSH_BYTES {
            let full = std::mem::take(&mut *bytes);
            drop(bytes);
            write_in_order(&full);
        } else if was_empty && !FLUSHER.armed.swap(true, Ordering::SeqCst) {
            if let Some(Some(flusher)) = FLUSHER.thread.get() {
                flusher.unpark();
            }
        }
        Some(())
    });
    if !matches!(pushed, Ok(Some(()))) {
        write_out(line);
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
    use std::time::Instant;

    /// What the tests' lines would have written to standard error.
    pub(super) static WRITTEN: Mutex<Vec<u8>> = Mutex::new(Vec::new());

    /// Serializes these tests: `flush_all` in one would empty another's buffer.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn written_contains(needle: &[u8]) -> bool {
        lock(&WRITTEN).windows(needle.len()).any(|w| w == needle)
    }

    fn buffered() -> usize {
        LOCAL.with(|l| l.borrow().as_ref().map_or(0, |b| lock(b).len()))
    }

    /// Waits (up to 5 s) for `needle` to be written.
    fn eventually_written(needle: &[u8]) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if written_contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    #[test]
    fn an_unregistered_thread_writes_each_line_at_once() {
        let _serial = lock(&SERIAL);
        emit(b"unregistered line\n");
        assert!(written_contains(b"unregistered line\n"));
    }

    #[test]
    fn a_registered_thread_buffers_and_the_flusher_writes_soon() {
        let _serial = lock(&SERIAL);
        register_thread();
        let start = Instant::now();
        emit(b"buffered line one\n");
        emit(b"buffered line two\n");
        let (early, held) = (written_contains(b"buffered line one\n"), buffered());
        // Unless this thread stalled for the flusher's whole delay, the lines are still held.
        if start.elapsed() < FLUSH_AFTER {
            assert!(!early);
            assert!(held > 0);
        }
        assert!(eventually_written(
            b"buffered line one\nbuffered line two\n"
        ));
        assert_eq!(buffered(), 0);
        // The flusher goes back to sleep and wakes again for the next line.
        emit(b"buffered line three\n");
        assert!(eventually_written(b"buffered line three\n"));
        unregister_thread();
    }

    #[test]
    fn a_full_buffer_is_written_by_its_thread() {
        let _serial = lock(&SERIAL);
        register_thread();
        let mut line = vec![b'f'; 1023];
        line.push(b'\n');
        let start = Instant::now();
        for _ in 0..FLUSH_BYTES / 1024 {
            emit(&line);
        }
        // Written by the emitting thread as it filled, before the flusher's delay was up.
        let (held, written) = (buffered(), written_contains(&line));
        if start.elapsed() < FLUSH_AFTER {
            assert_eq!(held, 0);
            assert!(written);
        }
        unregister_thread();
    }

    #[test]
    fn stopping_a_thread_writes_its_lines() {
        let _serial = lock(&SERIAL);
        register_thread();
        emit(b"line before stop\n");
        unregister_thread();
        assert!(written_contains(b"line before stop\n"));
        // Afterwards the thread writes directly.
        emit(b"line after stop\n");
        assert!(written_contains(b"line after stop\n"));
    }

    #[test]
    fn flush_all_writes_every_buffer() {
        let _serial = lock(&SERIAL);
        register_thread();
        emit(b"line for flush_all\n");
        flush_all();
        assert!(written_contains(b"line for flush_all\n"));
        unregister_thread();
    }
}
