//! A bounded line reader: one CRLF-terminated line at a time, never more than a fixed number of
//! bytes buffered.
//!
//! Both IMAP and SMTP are line protocols, and a client that never sends a line ending must not
//! make the server buffer without limit. A bare LF is accepted as a line ending too (some clients
//! and hand-typed sessions send it); a CR before the LF is removed. No mail data is ever read, so
//! the leniency cannot be used for smuggling.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Why no line was read.
#[derive(Debug)]
pub(crate) enum LineError {
    /// The peer closed the connection (a partial last line is dropped).
    Eof,
    /// The line grew past the limit; the rest of it is still unread.
    TooLong,
    /// The connection failed.
    Io(std::io::Error),
}

/// Reads the next line (without its line ending) into `line`, refusing lines longer than `max`.
pub(crate) async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    max: usize,
) -> Result<(), LineError> {
    line.clear();
    loop {
        let buf = reader.fill_buf().await.map_err(LineError::Io)?;
        if buf.is_empty() {
            return Err(LineError::Eof);
        }
        let (chunk, found) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        // The CR that may end the line is counted too, so allow one byte more than `max`.
        if line.len() + chunk.len() > max + 1 {
            return Err(LineError::TooLong);
        }
        line.extend_from_slice(chunk);
        let used = found.unwrap_or(buf.len());
        reader.consume(used);
        if found.is_some() {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line.len() > max {
                return Err(LineError::TooLong);
            }
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], max: usize) -> Vec<Result<Vec<u8>, String>> {
        let mut reader = tokio::io::BufReader::with_capacity(4, input);
        let mut out = Vec::new();
        loop {
            let mut line = Vec::new();
            match read_line(&mut reader, &mut line, max).await {
                Ok(()) => out.push(Ok(line)),
                Err(LineError::Eof) => return out,
                Err(e) => {
                    out.push(Err(format!("{e:?}")));
                    return out;
                }
            }
        }
    }

    #[tokio::test]
    async fn splits_crlf_and_lf_lines_across_buffer_refills() {
        let got = lines(b"a1 NOOP\r\nb\n\r\nlast-without-ending", 32).await;
        assert_eq!(
            got,
            vec![Ok(b"a1 NOOP".to_vec()), Ok(b"b".to_vec()), Ok(Vec::new())]
        );
    }

    #[tokio::test]
    async fn bounds_line_length() {
        assert_eq!(lines(b"12345\r\n", 5).await, vec![Ok(b"12345".to_vec())]);
        assert_eq!(
            lines(b"123456\r\n", 5).await,
            vec![Err("TooLong".to_owned())]
        );
        assert_eq!(
            lines(b"1234567890123", 5).await,
            vec![Err("TooLong".to_owned())]
        );
    }
}
