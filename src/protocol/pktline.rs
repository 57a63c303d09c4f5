//! git's pkt-line framing: reading a request, writing lines, and the side-band multiplexer.

use std::io::{self, Write};
use std::time::{Duration, Instant};

/// Largest pkt-line payload (65520 bytes with the 4-byte length).
pub const MAX_PAYLOAD: usize = 65516;
/// Payload of one side-band-64k packet after the band byte.
pub const SIDEBAND_64K_DATA: usize = MAX_PAYLOAD - 1;
/// Payload of one (old, 1000-byte) side-band packet after the band byte.
pub const SIDEBAND_DATA: usize = 1000 - 5;
/// How long a client may wait without hearing from the server while a pack is prepared
/// (git's `uploadpack.keepalive`).
pub const KEEPALIVE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    Data(&'a [u8]),
    Flush,
    Delim,
    ResponseEnd,
}

impl<'a> Packet<'a> {
    /// The payload without one trailing newline, for text lines.
    pub fn text(&self) -> Option<&'a [u8]> {
        match self {
            Packet::Data(d) => Some(d.strip_suffix(b"\n").unwrap_or(d)),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PktError {
    #[error("invalid pkt-line length {0:?}")]
    BadLength(String),
    #[error("the request ends inside a pkt-line")]
    Truncated,
}

/// Reads pkt-lines from a request body held in memory.
pub struct PktReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> PktReader<'a> {
    pub fn new(buf: &'a [u8]) -> PktReader<'a> {
        PktReader { buf, pos: 0 }
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Bytes consumed so far (where raw data after the pkt-lines starts).
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The next packet, `None` at the end of the input.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'a>>, PktError> {
        if self.at_end() {
            return Ok(None);
        }
        let header = self
            .buf
            .get(self.pos..self.pos + 4)
            .ok_or(PktError::Truncated)?;
        let bad = || PktError::BadLength(String::from_utf8_lossy(header).into_owned());
        let text = std::str::from_utf8(header).map_err(|_| bad())?;
        if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let len = usize::from_str_radix(text, 16).map_err(|_| bad())?;
        self.pos += 4;
        Ok(Some(match len {
            0 => Packet::Flush,
            1 => Packet::Delim,
            2 => Packet::ResponseEnd,
            3 | 4 => return Err(bad()),
            _ => {
                let data = self
                    .buf
                    .get(self.pos..self.pos + len - 4)
                    .ok_or(PktError::Truncated)?;
                self.pos += len - 4;
                Packet::Data(data)
            }
        }))
    }
}

/// A payload that does not fit in one pkt-line (or is empty, which only a flush may be).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a pkt-line payload of {0} bytes (at most {MAX_PAYLOAD}, at least 1)")]
pub struct PayloadSize(pub usize);

/// Appends one data line, or refuses a payload that is empty or longer than
/// `MAX_PAYLOAD` (lines that carry names from clients can be either).
pub fn data(out: &mut Vec<u8>, payload: &[u8]) -> Result<(), PayloadSize> {
    if payload.is_empty() || payload.len() > MAX_PAYLOAD {
        return Err(PayloadSize(payload.len()));
    }
    out.extend_from_slice(format!("{:04x}", payload.len() + 4).as_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// Appends a text line (a newline is added). The server writes these itself; a line that
/// would not fit (a long error message) is cut to fit rather than failing.
pub fn text(out: &mut Vec<u8>, line: &str) {
    let mut payload = Vec::with_capacity(line.len() + 1);
    payload.extend_from_slice(&line.as_bytes()[..line.len().min(MAX_PAYLOAD - 1)]);
    payload.push(b'\n');
    // Cannot fail: between 1 and MAX_PAYLOAD bytes.
    let _ = data(out, &payload);
}

pub fn flush(out: &mut Vec<u8>) {
    out.extend_from_slice(b"0000");
}

pub fn delim(out: &mut Vec<u8>) {
    out.extend_from_slice(b"0001");
}

/// An `ERR` line, which git prints as "remote error: …" and stops.
pub fn error_line(out: &mut Vec<u8>, message: &str) {
    text(out, &format!("ERR {message}"));
}

/// How pack data reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Band {
    /// Raw bytes (a v0 client that asked for no side band).
    None,
    /// `side-band`: 1000-byte packets.
    Small,
    /// `side-band-64k` (always in protocol v2).
    Large,
}

/// Multiplexes the pack (band 1), progress (band 2) and a fatal error (band 3) onto one
/// stream, in packets as large as the band allows, with keep-alives while nothing is sent.
pub struct Sideband<W: Write> {
    out: W,
    band: Band,
    progress: bool,
    buf: Vec<u8>,
    last_sent: Instant,
    keepalive: Option<Duration>,
}

impl<W: Write> Sideband<W> {
    pub fn new(out: W, band: Band, progress: bool) -> Sideband<W> {
        Sideband {
            out,
            band,
            progress: progress && band != Band::None,
            buf: Vec::with_capacity(SIDEBAND_64K_DATA + 5),
            last_sent: Instant::now(),
            keepalive: Some(KEEPALIVE),
        }
    }

    /// Silence after which `keepalive` sends a packet; `None` never does.
    pub fn with_keepalive(mut self, interval: Option<Duration>) -> Sideband<W> {
        self.keepalive = interval;
        self
    }

    fn capacity(&self) -> usize {
        match self.band {
            Band::Small => SIDEBAND_DATA,
            Band::Large | Band::None => SIDEBAND_64K_DATA,
        }
    }

    fn send_packet(&mut self, band: u8, payload: &[u8]) -> io::Result<()> {
        let mut packet = Vec::with_capacity(payload.len() + 5);
        packet.extend_from_slice(format!("{:04x}", payload.len() + 5).as_bytes());
        packet.push(band);
        packet.extend_from_slice(payload);
        self.out.write_all(&packet)?;
        self.last_sent = Instant::now();
        Ok(())
    }

    fn flush_data(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = std::mem::take(&mut self.buf);
        let result = match self.band {
            Band::None => {
                self.last_sent = Instant::now();
                self.out.write_all(&data)
            }
            _ => self.send_packet(1, &data),
        };
        self.buf = data;
        self.buf.clear();
        result
    }

    /// A progress message on band 2 (dropped when the client asked for none).
    pub fn progress(&mut self, message: &str) -> io::Result<()> {
        if !self.progress {
            return Ok(());
        }
        self.flush_data()?;
        for chunk in message.as_bytes().chunks(self.capacity()) {
            self.send_packet(2, chunk)?;
        }
        Ok(())
    }

    /// A fatal error on band 3; the client stops reading after it.
    pub fn fatal(&mut self, message: &str) -> io::Result<()> {
        if self.band == Band::None {
            return Ok(());
        }
        self.flush_data()?;
        // git prints band 3 as a line of its own, as it does git's own "aborting due to
        // possible repository corruption" (sent without a newline).
        let message = message.trim_end_matches('\n');
        let capacity = self.capacity();
        self.send_packet(3, &message.as_bytes()[..message.len().min(capacity)])?;
        self.out.flush()
    }

    /// Keeps the connection alive while the pack is being prepared: after the keep-alive
    /// interval of silence, sends what is buffered or an empty band-1 packet.
    pub fn keepalive(&mut self) -> io::Result<()> {
        let Some(interval) = self.keepalive else {
            return Ok(());
        };
        if self.last_sent.elapsed() < interval || self.band == Band::None {
            return Ok(());
        }
        if self.buf.is_empty() {
            // Empty payloads are not valid pkt-lines except as this keep-alive.
            self.out.write_all(b"0005\x01")?;
            self.out.flush()?;
            self.last_sent = Instant::now();
            Ok(())
        } else {
            self.flush_data()
        }
    }

    /// Sends everything buffered and ends the stream with a flush packet.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush_data()?;
        if self.band != Band::None {
            self.out.write_all(b"0000")?;
        }
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for Sideband<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let room = self.capacity() - self.buf.len();
        let n = room.min(bytes.len());
        self.buf.extend_from_slice(&bytes[..n]);
        if self.buf.len() == self.capacity() {
            self.flush_data()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_data()?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lines_and_special_packets() {
        let input = b"000ahello\n00010000000bworld!!0002";
        let mut r = PktReader::new(input);
        assert_eq!(
            r.next_packet().unwrap().unwrap().text(),
            Some(&b"hello"[..])
        );
        assert_eq!(r.next_packet().unwrap(), Some(Packet::Delim));
        assert_eq!(r.next_packet().unwrap(), Some(Packet::Flush));
        assert_eq!(
            r.next_packet().unwrap(),
            Some(Packet::Data(&b"world!!"[..]))
        );
        assert_eq!(r.next_packet().unwrap(), Some(Packet::ResponseEnd));
        assert_eq!(r.next_packet().unwrap(), None);
    }

    #[test]
    fn writers_refuse_or_cut_what_does_not_fit() {
        let mut out = Vec::new();
        assert_eq!(data(&mut out, b""), Err(PayloadSize(0)));
        let long = vec![b'a'; MAX_PAYLOAD + 1];
        assert_eq!(data(&mut out, &long), Err(PayloadSize(MAX_PAYLOAD + 1)));
        assert!(out.is_empty());
        data(&mut out, &long[..MAX_PAYLOAD]).unwrap();
        assert_eq!(&out[..4], b"fff0");
        out.clear();
        text(&mut out, &"b".repeat(100_000));
        assert_eq!(out.len(), 4 + MAX_PAYLOAD);
        assert_eq!(out.last(), Some(&b'\n'));
    }

    #[test]
    fn refuses_bad_lengths() {
        for bad in [&b"00zz"[..], b"0003", b"0004", b"+123", b"000ahel", b"00"] {
            assert!(PktReader::new(bad).next_packet().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sideband_chunks_data_and_ends_with_flush() {
        let mut out = Vec::new();
        let mut sb = Sideband::new(&mut out, Band::Small, true);
        sb.write_all(&[7u8; 2000]).unwrap();
        sb.progress("working\r").unwrap();
        sb.finish().unwrap();
        let mut r = PktReader::new(&out);
        let mut data = 0;
        let mut progress = Vec::new();
        loop {
            match r.next_packet().unwrap().unwrap() {
                Packet::Data(d) if d[0] == 1 => {
                    assert!(d.len() <= 1000 - 4);
                    data += d.len() - 1
                }
                Packet::Data(d) => progress.extend_from_slice(&d[1..]),
                Packet::Flush => break,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(data, 2000);
        assert_eq!(progress, b"working\r");
    }
}
