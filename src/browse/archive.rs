//! Archives of a commit's tree, as `git archive` makes them: `tar` (pax, with the commit id
//! in a global header, so `git get-tar-commit-id` reads it) compressed with gzip, or `zip`
//! (the commit id as the archive's comment). Entries come in git's order, each directory
//! before what it holds; files keep their executable bit, symlinks stay symlinks, a
//! submodule is an empty directory. The whole listing is read before the first byte is
//! written, so a problem is an error status, not a cut-off download.

use std::io::{self, Write};

use bstr::BString;
use flate2::Compression;

use crate::object::{EntryKind, ObjectId};
use crate::store::Repo;

use super::tree::join;
use super::{BrowseError, CommitInfo, read_tree};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    TarGz,
    Zip,
}

impl ArchiveFormat {
    pub fn parse(name: &str) -> Option<ArchiveFormat> {
        match name {
            "tar.gz" | "tgz" => Some(ArchiveFormat::TarGz),
            "zip" => Some(ArchiveFormat::Zip),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ArchiveFormat::TarGz => "tar.gz",
            ArchiveFormat::Zip => "zip",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ArchiveFormat::TarGz => "application/gzip",
            ArchiveFormat::Zip => "application/zip",
        }
    }
}

/// Most entries an archive lists (a tree of shared subtrees can name billions), the most
/// bytes of all its paths together, and the longest path.
const MAX_ENTRIES: usize = 1_000_000;
const MAX_PATH_BYTES: usize = 256 << 20;
const MAX_PATH: usize = 4096;

/// Why a stored name cannot be an archive entry's: whoever extracts the archive must not
/// get a file outside its directory. git's fsck refuses these names in pushed trees; an
/// imported history, or a repository with `fsck-objects` off, may still hold them.
fn unsafe_name(name: &[u8]) -> Option<&'static str> {
    if name.is_empty() {
        return Some("an empty name");
    }
    if name == b"." || name == b".." {
        return Some("a `.` or `..` name");
    }
    if name.contains(&b'/') || name.contains(&0) {
        return Some("a name containing `/` or NUL");
    }
    let windows_drive = name.len() >= 2 && name[0].is_ascii_alphabetic() && name[1] == b':';
    if windows_drive
        || name
            .split(|&b| b == b'\\')
            .any(|part| part == b".." || (part.is_empty() && name.contains(&b'\\')))
    {
        return Some("a name that Windows reads as a path out of its directory (`..\\`, `C:`)");
    }
    None
}

/// Most entries and bytes a zip without zip64 records holds.
const ZIP_MAX_ENTRIES: usize = 65_535;
const ZIP_MAX_BYTES: u64 = 0xffff_0000;

struct Entry {
    /// The path in the archive (the prefix included; directories end with `/`).
    path: BString,
    kind: EntryKind,
    blob: Option<ObjectId>,
    size: u64,
}

/// An archive about to be written: every entry, read and checked.
pub struct ArchivePlan {
    format: ArchiveFormat,
    entries: Vec<Entry>,
    commit: String,
    /// Seconds since the epoch, and the commit's offset from UTC in minutes.
    time: i64,
    tz_offset_minutes: i32,
}

/// Reads the listing of `commit`'s tree for an archive whose paths start with `prefix`
/// (`name-1234abc/`, say; empty for none).
pub fn plan_archive(
    repo: &Repo,
    commit: &CommitInfo,
    format: ArchiveFormat,
    prefix: &str,
) -> Result<ArchivePlan, BrowseError> {
    let mut entries = Vec::new();
    let prefix = prefix.trim_end_matches('/');
    if !prefix.is_empty() {
        entries.push(Entry {
            path: format!("{prefix}/").into(),
            kind: EntryKind::Directory,
            blob: None,
            size: 0,
        });
    }
    // Depth first in tree order: each frame is a directory's path and its entries not yet
    // visited, in reverse.
    let reversed = |tree| -> Result<_, BrowseError> {
        let mut items = read_tree(repo, tree)?;
        // One name twice (a symlink `a` and a directory `a`) would let the second write
        // through the first.
        let mut names: Vec<&[u8]> = items.iter().map(|i| i.name.as_slice()).collect();
        names.sort_unstable();
        if let Some(twice) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(BrowseError::UnsafeName {
                path: String::from_utf8_lossy(twice[0]).into_owned(),
                reason: "a name twice in one directory",
            });
        }
        items.reverse();
        Ok(items)
    };
    let mut stack = vec![(BString::from(prefix), reversed(commit.tree)?)];
    let mut path_bytes = 0usize;
    while let Some((dir, items)) = stack.last_mut() {
        let Some(item) = items.pop() else {
            stack.pop();
            continue;
        };
        let path = join(dir, &item.name);
        if let Some(why) = unsafe_name(&item.name) {
            return Err(BrowseError::UnsafeName {
                path: String::from_utf8_lossy(&path).into_owned(),
                reason: why,
            });
        }
        path_bytes += path.len();
        if entries.len() >= MAX_ENTRIES || path_bytes > MAX_PATH_BYTES || path.len() > MAX_PATH {
            return Err(BrowseError::TooLarge(format!(
                "the tree lists more than an archive holds ({MAX_ENTRIES} entries, {} MiB of paths, {MAX_PATH}-byte paths); clone it instead",
                MAX_PATH_BYTES >> 20
            )));
        }
        match (item.kind, item.id) {
            (EntryKind::Directory, Some(id)) => {
                let mut shown = path.clone();
                shown.push(b'/');
                entries.push(Entry {
                    path: shown,
                    kind: EntryKind::Directory,
                    blob: None,
                    size: 0,
                });
                stack.push((path, reversed(id)?));
            }
            (EntryKind::Gitlink | EntryKind::Directory, _) => {
                let mut shown = path;
                shown.push(b'/');
                entries.push(Entry {
                    path: shown,
                    kind: EntryKind::Directory,
                    blob: None,
                    size: 0,
                });
            }
            (kind, Some(id)) => {
                let location = crate::history::locate(repo, &id)?;
                entries.push(Entry {
                    path,
                    kind,
                    blob: Some(id),
                    size: repo.object_size(&location)?,
                });
            }
            (_, None) => {}
        }
    }
    let plan = ArchivePlan {
        format,
        entries,
        commit: commit.sha1.to_hex(),
        time: commit.committer.as_ref().map_or(0, |c| c.time),
        tz_offset_minutes: commit.committer.as_ref().map_or(0, |c| c.tz_offset_minutes),
    };
    if format == ArchiveFormat::Zip {
        let bytes: u64 = plan
            .entries
            .iter()
            .map(|e| e.size + 100 + e.path.len() as u64 * 2)
            .sum();
        if plan.entries.len() > ZIP_MAX_ENTRIES || bytes > ZIP_MAX_BYTES {
            return Err(BrowseError::TooLarge(format!(
                "{} entries of {bytes} bytes do not fit a zip archive without zip64 (at most {ZIP_MAX_ENTRIES} entries, 4 GiB); ask for tar.gz",
                plan.entries.len()
            )));
        }
    }
    Ok(plan)
}

impl ArchivePlan {
    pub fn entry_count(&self) -> usize {
        self.entries.len()
    }

    /// Writes the archive to `out`; blobs are read one at a time as they are written.
    pub fn write(&self, repo: &Repo, out: impl Write) -> io::Result<()> {
        match self.format {
            ArchiveFormat::TarGz => {
                let mut gz = flate2::GzBuilder::new()
                    .mtime(self.time.clamp(0, u32::MAX as i64) as u32)
                    .write(out, Compression::default());
                self.write_tar(repo, &mut gz)?;
                gz.finish()?.flush()
            }
            ArchiveFormat::Zip => self.write_zip(repo, out),
        }
    }

    fn content(&self, repo: &Repo, id: &ObjectId) -> io::Result<std::sync::Arc<[u8]>> {
        let location = crate::history::locate(repo, id).map_err(io::Error::other)?;
        Ok(repo.read_content(&location).map_err(io::Error::other)?.1)
    }

    fn write_tar(&self, repo: &Repo, out: &mut impl Write) -> io::Result<()> {
        let mut tar = Tar { out, written: 0 };
        let mtime = self.time.max(0) as u64;
        tar.pax(
            b'g',
            b"pax_global_header",
            &[("comment", self.commit.as_bytes())],
        )?;
        for entry in &self.entries {
            match (entry.kind, entry.blob) {
                (EntryKind::Symlink, Some(id)) => {
                    let target = self.content(repo, &id)?;
                    tar.header(&entry.path, b'2', 0o777, 0, mtime, &target)?;
                }
                (EntryKind::File | EntryKind::Executable, Some(id)) => {
                    let mode = if entry.kind == EntryKind::Executable {
                        0o775
                    } else {
                        0o664
                    };
                    let content = self.content(repo, &id)?;
                    tar.header(&entry.path, b'0', mode, content.len() as u64, mtime, b"")?;
                    tar.data(&content)?;
                }
                _ => tar.header(&entry.path, b'5', 0o775, 0, mtime, b"")?,
            }
        }
        // Two zero blocks end the archive; git pads it to whole 10240-byte records.
        tar.zeros(1024)?;
        let record = 10240;
        let rest = (record - tar.written % record) % record;
        tar.zeros(rest)
    }

    fn write_zip(&self, repo: &Repo, mut out: impl Write) -> io::Result<()> {
        let (time, date) = dos_time(
            self.time
                .saturating_add(i64::from(self.tz_offset_minutes) * 60),
        );
        let mut offset: u64 = 0;
        let mut central = Vec::new();
        for entry in &self.entries {
            // As git writes them: a Unix mode only for symlinks and executables (made by
            // Unix, 0x0317), the MS-DOS directory bit for directories, nothing for files.
            let (attributes, made_by, raw): (u32, u16, _) = match (entry.kind, entry.blob) {
                (EntryKind::Symlink, Some(id)) => {
                    (0o120777 << 16, 0x0317, Some(self.content(repo, &id)?))
                }
                (EntryKind::Executable, Some(id)) => {
                    (0o100755 << 16, 0x0317, Some(self.content(repo, &id)?))
                }
                (EntryKind::File, Some(id)) => (0, 0x0014, Some(self.content(repo, &id)?)),
                _ => (0x10, 0x0014, None),
            };
            let raw: &[u8] = raw.as_deref().unwrap_or(b"");
            let crc = crc32fast::hash(raw);
            let deflated = entry.kind != EntryKind::Symlink && !raw.is_empty();
            let mut compressed_data = Vec::new();
            if deflated {
                let mut encoder =
                    flate2::write::DeflateEncoder::new(Vec::new(), Compression::default());
                encoder.write_all(raw)?;
                compressed_data = encoder.finish()?;
            }
            // Stored as it is when deflating does not make it smaller (the size bound of
            // the plan then holds for every entry).
            let deflated = deflated && compressed_data.len() < raw.len();
            let data: &[u8] = if deflated { &compressed_data } else { raw };
            let method: u16 = if deflated { 8 } else { 0 };
            let utf8 = std::str::from_utf8(&entry.path).is_ok_and(|p| !p.is_ascii());
            let flags: u16 = if utf8 { 1 << 11 } else { 0 };
            let name = entry.path.as_slice();
            let too_big = || io::Error::other("the archive outgrew what zip without zip64 holds");
            let header_offset = u32::try_from(offset).map_err(|_| too_big())?;
            let mut local = Vec::with_capacity(30 + name.len());
            local.extend_from_slice(&0x04034b50u32.to_le_bytes());
            local.extend_from_slice(&20u16.to_le_bytes());
            local.extend_from_slice(&flags.to_le_bytes());
            local.extend_from_slice(&method.to_le_bytes());
            local.extend_from_slice(&time.to_le_bytes());
            local.extend_from_slice(&date.to_le_bytes());
            local.extend_from_slice(&crc.to_le_bytes());
            let compressed = u32::try_from(data.len()).map_err(|_| too_big())?;
            let size = u32::try_from(raw.len()).map_err(|_| too_big())?;
            local.extend_from_slice(&compressed.to_le_bytes());
            local.extend_from_slice(&size.to_le_bytes());
            local.extend_from_slice(&(name.len() as u16).to_le_bytes());
            local.extend_from_slice(&0u16.to_le_bytes());
            local.extend_from_slice(name);
            out.write_all(&local)?;
            out.write_all(data)?;
            offset += (local.len() + data.len()) as u64;

            central.extend_from_slice(&0x02014b50u32.to_le_bytes());
            central.extend_from_slice(&made_by.to_le_bytes());
            central.extend_from_slice(&20u16.to_le_bytes());
            central.extend_from_slice(&flags.to_le_bytes());
            central.extend_from_slice(&method.to_le_bytes());
            central.extend_from_slice(&time.to_le_bytes());
            central.extend_from_slice(&date.to_le_bytes());
            central.extend_from_slice(&crc.to_le_bytes());
            central.extend_from_slice(&compressed.to_le_bytes());
            central.extend_from_slice(&size.to_le_bytes());
            central.extend_from_slice(&(name.len() as u16).to_le_bytes());
            central.extend_from_slice(&[0; 8]); // extra, comment, disk, internal attributes
            central.extend_from_slice(&attributes.to_le_bytes());
            central.extend_from_slice(&header_offset.to_le_bytes());
            central.extend_from_slice(name);
        }
        let directory_offset = u32::try_from(offset)
            .map_err(|_| io::Error::other("the archive outgrew what zip without zip64 holds"))?;
        out.write_all(&central)?;
        let count = self.entries.len() as u16;
        let mut end = Vec::with_capacity(22 + self.commit.len());
        end.extend_from_slice(&0x06054b50u32.to_le_bytes());
        end.extend_from_slice(&[0; 4]); // this disk, the directory's disk
        end.extend_from_slice(&count.to_le_bytes());
        end.extend_from_slice(&count.to_le_bytes());
        end.extend_from_slice(&(central.len() as u32).to_le_bytes());
        end.extend_from_slice(&directory_offset.to_le_bytes());
        end.extend_from_slice(&(self.commit.len() as u16).to_le_bytes());
        end.extend_from_slice(self.commit.as_bytes());
        out.write_all(&end)?;
        out.flush()
    }
}

struct Tar<W> {
    out: W,
    written: usize,
}

impl<W: Write> Tar<W> {
    fn zeros(&mut self, n: usize) -> io::Result<()> {
        self.out.write_all(&vec![0; n])?;
        self.written += n;
        Ok(())
    }

    fn data(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len();
        self.zeros((512 - bytes.len() % 512) % 512)
    }

    /// A pax extended header (`x`) or global header (`g`) holding `records`.
    fn pax(&mut self, typeflag: u8, name: &[u8], records: &[(&str, &[u8])]) -> io::Result<()> {
        let mut body = Vec::new();
        for (key, value) in records {
            let base = key.len() + value.len() + 3;
            let mut len = base + base.to_string().len();
            if len.to_string().len() > base.to_string().len() {
                len += 1;
            }
            body.extend_from_slice(format!("{len} {key}=").as_bytes());
            body.extend_from_slice(value);
            body.push(b'\n');
        }
        self.block(name, typeflag, 0o664, body.len() as u64, 0, b"")?;
        self.data(&body)
    }

    /// An entry's header, preceded by a pax header when its path or link target is longer
    /// than the ustar fields.
    fn header(
        &mut self,
        path: &[u8],
        typeflag: u8,
        mode: u32,
        size: u64,
        mtime: u64,
        link: &[u8],
    ) -> io::Result<()> {
        let mut records: Vec<(&str, &[u8])> = Vec::new();
        if path.len() > 100 {
            records.push(("path", path));
        }
        if link.len() > 100 {
            records.push(("linkpath", link));
        }
        if !records.is_empty() {
            self.pax(b'x', b"pax_header", &records)?;
        }
        self.block(path, typeflag, mode, size, mtime, link)
    }

    fn block(
        &mut self,
        path: &[u8],
        typeflag: u8,
        mode: u32,
        size: u64,
        mtime: u64,
        link: &[u8],
    ) -> io::Result<()> {
        let mut block = [0u8; 512];
        let put = |block: &mut [u8; 512], at: usize, len: usize, bytes: &[u8]| {
            let n = bytes.len().min(len);
            block[at..at + n].copy_from_slice(&bytes[..n]);
        };
        let octal = |block: &mut [u8; 512], at: usize, len: usize, value: u64| {
            let text = format!("{value:0width$o}", width = len - 1);
            put(block, at, len - 1, text.as_bytes());
        };
        if size > 0o77777777777 {
            return Err(io::Error::other("an entry larger than 8 GiB"));
        }
        put(&mut block, 0, 100, path);
        octal(&mut block, 100, 8, u64::from(mode));
        octal(&mut block, 108, 8, 0);
        octal(&mut block, 116, 8, 0);
        octal(&mut block, 124, 12, size);
        octal(&mut block, 136, 12, mtime.min(0o77777777777));
        block[148..156].fill(b' ');
        block[156] = typeflag;
        put(&mut block, 157, 100, link);
        put(&mut block, 257, 8, b"ustar\x0000");
        put(&mut block, 265, 32, b"root");
        put(&mut block, 297, 32, b"root");
        let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
        put(&mut block, 148, 8, format!("{sum:06o}\0 ").as_bytes());
        self.out.write_all(&block)?;
        self.written += 512;
        Ok(())
    }
}

/// MS-DOS time and date of a moment (local to the commit's time zone), as zip keeps them;
/// moments before 1980 (the format's epoch) are 1980-01-01.
fn dos_time(seconds: i64) -> (u16, u16) {
    let days = seconds.div_euclid(86_400);
    // (`seconds` is the commit's time plus its offset, added saturating by the caller.)
    let of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = super::time::civil_from_days(days);
    if year < 1980 {
        return (0, (1 << 5) | 1);
    }
    let year = year.min(2107);
    let time = ((of_day / 3600) << 11) | (((of_day % 3600) / 60) << 5) | ((of_day % 60) / 2);
    let date = ((year - 1980) << 9) | (i64::from(month) << 5) | i64::from(day);
    (time as u16, date as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_leave_their_directory_are_refused() {
        for bad in [
            &b""[..],
            b".",
            b"..",
            b"a/b",
            b"..\\x",
            b"\\x",
            b"x\\",
            b"C:x",
            b"a\0b",
        ] {
            assert!(
                unsafe_name(bad).is_some(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        for good in [
            &b"a"[..],
            b"...",
            b"ab:c",
            b"a\\b",
            b".gitignore",
            "ü".as_bytes(),
        ] {
            assert!(
                unsafe_name(good).is_none(),
                "{:?}",
                String::from_utf8_lossy(good)
            );
        }
    }

    #[test]
    fn zip_times_are_dos_times() {
        // 2009-02-13 23:31:30 UTC
        let (time, date) = dos_time(1_234_567_890);
        assert_eq!(date, ((2009 - 1980) << 9) | (2 << 5) | 13);
        assert_eq!(time, (23 << 11) | (31 << 5) | 15);
        assert_eq!(dos_time(0), (0, (1 << 5) | 1));
    }
}
