//! The pkt-line part of a push (`receive::request::read_request`): commands with the
//! capabilities on the first, shallow lines, push options. Read once from a slice and once
//! through a reader that hands out a few bytes at a time and is sometimes interrupted: both
//! must agree, and must leave the input at the same byte.
#![no_main]

use std::io::{self, Read};

use forge::receive::request::read_request;
use libfuzzer_sys::fuzz_target;

/// Returns at most `step` bytes per call, and `Interrupted` every third call.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
    calls: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        if self.calls % 3 == 0 {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    let whole = read_request(&mut rest);
    if let Ok(request) = &whole {
        // The pack starts where the pkt-lines end.
        assert!(data.ends_with(rest));
        let _ = request.expects_pack();
        for command in &request.commands {
            let _ = command.is_delete();
        }
        assert!(request.commands.len() <= 100_000);
        assert!(request.options.len() <= 1_000);
        assert!(request.options.is_empty() || !request.commands.is_empty());
    }

    let step = 1 + data.first().map_or(0, |b| usize::from(b % 13));
    let mut trickle = Trickle {
        data,
        step,
        calls: 0,
    };
    let trickled = read_request(&mut trickle);
    assert_eq!(format!("{whole:?}"), format!("{trickled:?}"));
    if whole.is_ok() {
        assert_eq!(trickle.data, rest);
    }
});
