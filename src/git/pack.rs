//! Writing git pack files (version 2) and their index (version 2).

use std::io::{self, Write};

use crate::gitx::Hasher;
use crate::object::{Kind, Sha1};

/// How a pack entry refers to its delta base.
#[derive(Debug, Clone, Copy)]
pub enum PackEntryKind {
    Whole(Kind),
    /// Delta against the entry at this earlier offset of the same pack.
    OfsDelta(u64),
    /// Delta against the object with this id.
    RefDelta(Sha1),
}

/// The kind of a whole-object entry from its pack type code.
pub fn kind_of_type_code(code: u8) -> Option<Kind> {
    Some(match code {
        1 => Kind::Commit,
        2 => Kind::Tree,
        3 => Kind::Blob,
        4 => Kind::Tag,
        _ => return None,
    })
}

fn type_code(kind: Kind) -> u8 {
    match kind {
        Kind::Commit => 1,
        Kind::Tree => 2,
        Kind::Blob => 3,
        Kind::Tag => 4,
    }
}

/// The header of a pack entry: type and inflated size, then the base reference of a delta.
fn entry_header(kind: PackEntryKind, size: u64, offset: u64, out: &mut Vec<u8>) {
    let type_code = match kind {
        PackEntryKind::Whole(kind) => type_code(kind),
        PackEntryKind::OfsDelta(_) => 6,
        PackEntryKind::RefDelta(_) => 7,
    };
    let mut byte = type_code << 4 | (size & 0x0f) as u8;
    let mut rest = size >> 4;
    while rest > 0 {
        out.push(byte | 0x80);
        byte = (rest & 0x7f) as u8;
        rest >>= 7;
    }
    out.push(byte);
    match kind {
        PackEntryKind::Whole(_) => {}
        PackEntryKind::OfsDelta(base) => {
            // git's offset encoding: big-endian base-128, each continuation adding one.
            let mut distance = offset - base;
            let mut buf = [0u8; 10];
            let mut i = buf.len() - 1;
            buf[i] = (distance & 0x7f) as u8;
            distance >>= 7;
            while distance > 0 {
                distance -= 1;
                i -= 1;
                buf[i] = 0x80 | (distance & 0x7f) as u8;
                distance >>= 7;
            }
            out.extend_from_slice(&buf[i..]);
        }
        PackEntryKind::RefDelta(base) => out.extend_from_slice(base.as_bytes()),
    }
}

/// One written entry, for the index.
#[derive(Debug, Clone, Copy)]
pub struct PackedObject {
    pub id: Sha1,
    pub offset: u64,
    pub crc32: u32,
}

/// Streams a pack to any writer, hashing as it goes.
pub struct PackWriter<W: Write> {
    out: W,
    hasher: Hasher,
    offset: u64,
    declared: u32,
    objects: Vec<PackedObject>,
    header: Vec<u8>,
}

impl<W: Write> PackWriter<W> {
    pub fn new(mut out: W, object_count: u32) -> io::Result<PackWriter<W>> {
        let mut header = b"PACK".to_vec();
        header.extend_from_slice(&2u32.to_be_bytes());
        header.extend_from_slice(&object_count.to_be_bytes());
        out.write_all(&header)?;
        let mut hasher = Hasher::new();
        hasher.update(&header);
        Ok(PackWriter {
            out,
            hasher,
            offset: header.len() as u64,
            declared: object_count,
            objects: Vec::with_capacity(object_count as usize),
            header: Vec::with_capacity(32),
        })
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Writes an entry whose zlib stream is ready. `size` is the inflated size of that stream
    /// (the object, or the delta instructions). Returns the entry's offset.
    pub fn write_entry(
        &mut self,
        id: Sha1,
        kind: PackEntryKind,
        size: u64,
        zlib: &[u8],
    ) -> io::Result<u64> {
        let offset = self.offset;
        self.header.clear();
        entry_header(kind, size, offset, &mut self.header);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&self.header);
        crc.update(zlib);
        for part in [&self.header[..], zlib] {
            self.out.write_all(part)?;
            self.hasher.update(part);
            self.offset += part.len() as u64;
        }
        self.objects.push(PackedObject {
            id,
            offset,
            crc32: crc.finalize(),
        });
        Ok(offset)
    }

    /// Writes the trailing checksum; returns it, the writer and the entries.
    pub fn finish(mut self) -> io::Result<(Sha1, W, Vec<PackedObject>)> {
        if self.objects.len() != self.declared as usize {
            return Err(io::Error::other(format!(
                "pack declared {} objects but {} were written",
                self.declared,
                self.objects.len()
            )));
        }
        let checksum = self.hasher.finish();
        self.out.write_all(checksum.as_bytes())?;
        self.out.flush()?;
        Ok((checksum, self.out, self.objects))
    }
}

/// The `.idx` (version 2) of a pack.
pub fn index_v2(objects: &mut [PackedObject], pack_checksum: &Sha1) -> Vec<u8> {
    objects.sort_unstable_by_key(|a| a.id);
    let mut out = Vec::with_capacity(8 + 1024 + objects.len() * 28 + 40);
    out.extend_from_slice(&[0xff, b't', b'O', b'c']);
    out.extend_from_slice(&2u32.to_be_bytes());
    let mut counts = [0u32; 256];
    objects.iter().for_each(|o| counts[o.id.0[0] as usize] += 1);
    let mut total = 0;
    for c in counts {
        total += c;
        out.extend_from_slice(&total.to_be_bytes());
    }
    objects
        .iter()
        .for_each(|o| out.extend_from_slice(o.id.as_bytes()));
    objects
        .iter()
        .for_each(|o| out.extend_from_slice(&o.crc32.to_be_bytes()));
    let mut large = Vec::new();
    for o in objects.iter() {
        if o.offset < 0x8000_0000 {
            out.extend_from_slice(&(o.offset as u32).to_be_bytes());
        } else {
            out.extend_from_slice(&(0x8000_0000 | large.len() as u32).to_be_bytes());
            large.push(o.offset);
        }
    }
    large
        .iter()
        .for_each(|o| out.extend_from_slice(&o.to_be_bytes()));
    out.extend_from_slice(pack_checksum.as_bytes());
    let mut hasher = Hasher::new();
    hasher.update(&out);
    out.extend_from_slice(hasher.finish().as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ofs_delta_offsets_match_git() {
        // Distances from git's encode_in_pack_object_header / OFS_DELTA examples.
        for (distance, expected) in [
            (1u64, vec![0x01]),
            (127, vec![0x7f]),
            (128, vec![0x80, 0x00]),
            (16511, vec![0xff, 0x7f]),
            (16512, vec![0x80, 0x80, 0x00]),
        ] {
            let mut out = Vec::new();
            entry_header(PackEntryKind::OfsDelta(1000), 5, 1000 + distance, &mut out);
            assert_eq!(&out[1..], &expected[..], "distance {distance}");
        }
    }
}
