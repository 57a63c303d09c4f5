//! git deltas as a client sends them in a pack: `delta::delta_sizes` and `delta::apply`
//! with a small result limit (a delta "bomb" must be refused, never allocated). The input is
//! split into a base and a delta at a point its first two bytes choose; the delta is also
//! applied to a base of exactly the size its header declares (so the instructions are
//! reached, not just the size check). The encoders' output must apply back to the target.
#![no_main]

use forge::delta::{self, DeltaError, DeltaIndex};
use libfuzzer_sys::fuzz_target;

/// The result limit passed to `apply`.
const MAX_RESULT: u64 = 1 << 20;
/// Largest synthesised base.
const MAX_BASE: u64 = 1 << 16;

fn apply_checked(base: &[u8], delta: &[u8]) {
    let mut out = vec![0xAA; 3];
    let result = delta::apply(base, delta, &mut out, MAX_RESULT);
    let sizes = delta::delta_sizes(delta);
    match result {
        Ok(()) => {
            let (base_size, result_size, _) = sizes.expect("apply succeeded");
            assert_eq!(base_size, base.len() as u64);
            assert_eq!(out.len() as u64, result_size);
            assert!(out.len() as u64 <= MAX_RESULT);
        }
        Err(DeltaError::ResultTooLarge { size, limit }) => {
            assert!(size > MAX_RESULT && limit == MAX_RESULT);
        }
        Err(_) => {}
    }
    // Whatever happened, nothing beyond the limit was reserved or written.
    assert!(out.len() as u64 <= MAX_RESULT);
    assert!(out.capacity() as u64 <= MAX_RESULT.max(3) * 2);
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        let _ = delta::delta_sizes(data);
        return;
    }
    let split = usize::from(u16::from_le_bytes([data[0], data[1]]));
    let rest = &data[2..];
    let (base, delta) = rest.split_at(split.min(rest.len()));

    // Base and delta as the input splits them.
    apply_checked(base, delta);
    // The whole input as a delta against a base of the declared size, filled from `base`.
    if let Ok((base_size, _, _)) = delta::delta_sizes(rest) {
        if base_size <= MAX_BASE {
            let filled: Vec<u8> = if base.is_empty() {
                vec![0; base_size as usize]
            } else {
                base.iter().copied().cycle().take(base_size as usize).collect()
            };
            apply_checked(&filled, rest);
        }
    }

    // The encoders: what they write applies back to the target.
    let target = delta;
    let mut out = Vec::new();
    let encoded = delta::encode(base, target);
    delta::apply(base, &encoded, &mut out, target.len() as u64).expect("encode output applies");
    assert_eq!(out, target);

    let limit = usize::from(data[0]) * 4;
    let mut limited = Vec::new();
    if DeltaIndex::new(base).encode(target, &mut limited, limit).is_some() {
        assert!(limited.len() <= limit);
        delta::apply(base, &limited, &mut out, target.len() as u64).expect("limited delta applies");
        assert_eq!(out, target);
    }
    let header = usize::from(data[1] % 8);
    if delta::encode_edit(base, target, header.min(base.len()), header.min(target.len()), &mut limited, usize::MAX).is_some() {
        delta::apply(base, &limited, &mut out, target.len() as u64).expect("edit delta applies");
        assert_eq!(out, target);
    }
});
