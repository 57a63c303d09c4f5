//! The body of a push: shallow lines, commands with the client's capabilities, push
//! options, then the raw pack.

use std::io::Read;

use bstr::{BString, ByteSlice};

use crate::object::Sha1;
use crate::protocol::pktline::{Packet, PktError, PktReader};

/// Why the command part of a push could not be read (git prints it as the server's
/// answer, a 400).
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error(transparent)]
    Packet(#[from] PktError),
    #[error("{0}")]
    Read(#[source] std::io::Error),
    #[error("the command list is longer than {} MiB", MAX_SECTION_BYTES >> 20)]
    SectionTooLong,
    #[error("the command list ends without a flush packet")]
    CommandsUnterminated,
    #[error("unexpected {0} in the command list")]
    UnexpectedPacket(String),
    #[error("protocol error: expected old/new/ref, got '{0}'")]
    BadCommand(BString),
    #[error("expected an object id, got '{0}'")]
    BadId(BString),
    #[error("more than {MAX_COMMANDS} ref updates in one push")]
    TooManyCommands,
    #[error("the push options are missing")]
    OptionsMissing,
    #[error("more than {MAX_PUSH_OPTIONS} push options")]
    TooManyOptions,
    #[error("the push options end without a flush packet")]
    OptionsUnterminated,
}

impl RequestError {
    pub fn code(&self) -> &'static str {
        match self {
            RequestError::Read(_) => "read_failed",
            RequestError::SectionTooLong
            | RequestError::TooManyCommands
            | RequestError::TooManyOptions => "too_large",
            _ => "bad_request",
        }
    }
}

/// Commands in one push; git sends one per ref, so this bounds nothing a person does.
const MAX_COMMANDS: usize = 100_000;
const MAX_PUSH_OPTIONS: usize = 1_000;
/// Bytes of commands (or of push options) read before the pack: bounds what is held in
/// memory before any count is checked.
const MAX_SECTION_BYTES: usize = 32 << 20;

/// `<old> <new> <ref>`: move `ref` from `old` to `new` (the zero id for "absent").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushCommand {
    pub old: Sha1,
    pub new: Sha1,
    pub name: BString,
}

impl PushCommand {
    pub fn is_delete(&self) -> bool {
        self.new.is_zero()
    }
}

#[derive(Debug, Default)]
pub struct PushRequest {
    pub commands: Vec<PushCommand>,
    pub report_status: bool,
    pub report_status_v2: bool,
    pub side_band: bool,
    pub quiet: bool,
    pub atomic: bool,
    pub options: Vec<BString>,
    pub shallow: Vec<Sha1>,
}

impl PushRequest {
    /// Whether the client sends a pack: every push with anything but deletions does (possibly
    /// an empty one); a delete-only push sends none.
    pub fn expects_pack(&self) -> bool {
        self.commands.iter().any(|c| !c.is_delete())
    }
}

/// Reads the pkt-line part of a push from the start of the body, leaving `input` at the
/// first byte of the pack. An empty list (the `0000` probe git sends before a large chunked
/// body) gives no commands.
pub fn read_request(input: &mut impl Read) -> Result<PushRequest, RequestError> {
    let mut section = Vec::new();
    if !read_section(input, &mut section)? {
        return Ok(PushRequest::default());
    }
    let (mut request, options_follow) = parse_commands(&section)?;
    if options_follow {
        section.clear();
        if !read_section(input, &mut section)? {
            return Err(RequestError::OptionsMissing);
        }
        parse_options(&section, &mut request)?;
    }
    Ok(request)
}

/// Copies whole packets from `input` into `out` up to and including a flush. Returns
/// `false` when the input ends before the first byte.
fn read_section(input: &mut impl Read, out: &mut Vec<u8>) -> Result<bool, RequestError> {
    let start = out.len();
    loop {
        if out.len() - start > MAX_SECTION_BYTES {
            return Err(RequestError::SectionTooLong);
        }
        let mut header = [0u8; 4];
        let read = read_full(input, &mut header)?;
        if read == 0 && out.len() == start {
            return Ok(false);
        }
        if read < 4 {
            return Err(PktError::Truncated.into());
        }
        let bad = || {
            RequestError::from(PktError::BadLength(
                String::from_utf8_lossy(&header).into_owned(),
            ))
        };
        if !header.iter().all(u8::is_ascii_hexdigit) {
            return Err(bad());
        }
        let text = std::str::from_utf8(&header).map_err(|_| bad())?;
        let len = usize::from_str_radix(text, 16).map_err(|_| bad())?;
        out.extend_from_slice(&header);
        match len {
            0 => return Ok(true),
            1..=4 => return Err(bad()),
            _ => {
                let payload = out.len();
                out.resize(payload + len - 4, 0);
                if read_full(input, &mut out[payload..])? < len - 4 {
                    return Err(PktError::Truncated.into());
                }
            }
        }
    }
}

/// Fills `buf` unless the input ends first; returns how much it read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> Result<usize, RequestError> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(RequestError::Read(e)),
        }
    }
    Ok(filled)
}

/// The commands (with the capabilities on the first) up to their flush; also says whether
/// push options follow.
fn parse_commands(section: &[u8]) -> Result<(PushRequest, bool), RequestError> {
    let mut reader = PktReader::new(section);
    let mut request = PushRequest::default();
    let mut push_options = false;
    loop {
        let line = match reader.next_packet()? {
            None => return Err(RequestError::CommandsUnterminated),
            Some(Packet::Flush) => break,
            Some(packet @ Packet::Data(_)) => packet.text().unwrap_or_default().to_owned(),
            Some(other) => return Err(RequestError::UnexpectedPacket(format!("{other:?}"))),
        };
        if let Some(hex) = line.strip_prefix(b"shallow ") {
            request.shallow.push(parse_id(hex)?);
            continue;
        }
        let (command, features) = match line.find_byte(0) {
            Some(nul) => (&line[..nul], Some(&line[nul + 1..])),
            None => (&line[..], None),
        };
        if let Some(features) = features.filter(|_| request.commands.is_empty()) {
            for feature in features.split_str(" ") {
                match feature {
                    b"report-status" => request.report_status = true,
                    b"report-status-v2" => request.report_status_v2 = true,
                    b"side-band-64k" => request.side_band = true,
                    b"quiet" => request.quiet = true,
                    b"atomic" => request.atomic = true,
                    b"push-options" => push_options = true,
                    _ => {}
                }
            }
        }
        let mut parts = command.splitn_str(3, " ");
        let (Some(old), Some(new), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(RequestError::BadCommand(command.into()));
        };
        if request.commands.len() == MAX_COMMANDS {
            return Err(RequestError::TooManyCommands);
        }
        request.commands.push(PushCommand {
            old: parse_id(old)?,
            new: parse_id(new)?,
            name: name.into(),
        });
    }
    // Options follow only a non-empty command list (the probe has none).
    let options_follow = push_options && !request.commands.is_empty();
    Ok((request, options_follow))
}

fn parse_options(section: &[u8], request: &mut PushRequest) -> Result<(), RequestError> {
    let mut reader = PktReader::new(section);
    loop {
        match reader.next_packet()? {
            Some(Packet::Flush) => return Ok(()),
            Some(packet @ Packet::Data(_)) => {
                if request.options.len() == MAX_PUSH_OPTIONS {
                    return Err(RequestError::TooManyOptions);
                }
                request
                    .options
                    .push(packet.text().unwrap_or_default().into());
            }
            _ => return Err(RequestError::OptionsUnterminated),
        }
    }
}

fn parse_id(hex: &[u8]) -> Result<Sha1, RequestError> {
    Sha1::from_hex(hex).map_err(|_| RequestError::BadId(hex.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(line: &[u8]) -> Vec<u8> {
        let mut out = format!("{:04x}", line.len() + 4).into_bytes();
        out.extend_from_slice(line);
        out
    }

    #[test]
    fn commands_capabilities_options_and_the_pack_start() {
        let zero = "0".repeat(40);
        let one = "1".repeat(40);
        let mut body = pkt(
            format!("{zero} {one} refs/heads/main\0report-status-v2 side-band-64k atomic push-options agent=git/2.47\n")
                .as_bytes(),
        );
        body.extend(pkt(format!("{one} {zero} refs/heads/old\n").as_bytes()));
        body.extend_from_slice(b"0000");
        body.extend(pkt(b"ci.skip\n"));
        body.extend_from_slice(b"0000PACK");
        let mut input = &body[..];
        let request = read_request(&mut input).unwrap();
        assert_eq!(request.commands.len(), 2);
        assert_eq!(request.commands[0].name, "refs/heads/main");
        assert!(request.commands[1].is_delete());
        assert!(request.report_status_v2 && request.side_band && request.atomic);
        assert!(!request.quiet && !request.report_status);
        assert_eq!(request.options, vec![BString::from("ci.skip")]);
        assert_eq!(input, b"PACK");
    }

    #[test]
    fn the_probe_and_bad_lines() {
        let parse = |body: &[u8]| read_request(&mut &body[..]).map_err(|e| e.to_string());
        assert!(parse(b"0000").unwrap().commands.is_empty());
        assert!(parse(b"").unwrap().commands.is_empty());
        let err = parse(&[pkt(b"nonsense\n"), b"0000".to_vec()].concat()).unwrap_err();
        assert!(err.contains("expected old/new/ref"), "{err}");
        let err = parse(&[pkt(b"12 34 refs/heads/x\n"), b"0000".to_vec()].concat()).unwrap_err();
        assert!(err.contains("expected an object id"), "{err}");
        let err = parse(&pkt(b"0000000000000000000000000000000000000000 1 r")[..20]).unwrap_err();
        assert!(err.contains("ends inside a pkt-line"), "{err}");
        let err = parse(b"00zz").unwrap_err();
        assert!(err.contains("invalid pkt-line length"), "{err}");
        let one = "1".repeat(40);
        let line = format!("{one} {one} refs/heads/x\0push-options\n");
        let err = parse(&[pkt(line.as_bytes()), b"0000".to_vec()].concat()).unwrap_err();
        assert!(err.contains("push options are missing"), "{err}");
    }
}
