//! Ref name validation, following `git check-ref-format`, with length bounds git leaves to
//! the file system.

/// Longest ref name accepted, in bytes. git itself has no limit, but a ref advertised with
/// its name must fit a pkt-line beside the capabilities, and names this long are already
/// past what any tool displays.
pub const MAX_REF_NAME_BYTES: usize = 1024;
/// Longest component of a ref name: the file-name limit of the file systems git stores
/// loose refs on, so git itself could not create a longer one.
pub const MAX_REF_COMPONENT_BYTES: usize = 255;

/// Why a ref name is refused, in git's terms.
pub fn check_ref_name(name: &[u8]) -> Result<(), &'static str> {
    if name == b"HEAD" {
        return Ok(());
    }
    if name.len() > MAX_REF_NAME_BYTES {
        return Err("ref names must be at most 1024 bytes long");
    }
    if !name.starts_with(b"refs/") {
        return Err("ref names must start with refs/");
    }
    if name.ends_with(b"/") {
        return Err("ref names must not end with '/'");
    }
    if name.ends_with(b".") {
        return Err("ref names must not end with '.'");
    }
    if name.windows(2).any(|w| w == b"..") {
        return Err("ref names must not contain '..'");
    }
    if name.windows(2).any(|w| w == b"@{") {
        return Err("ref names must not contain '@{'");
    }
    for &b in name {
        if b < 0x20 || b == 0x7f {
            return Err("ref names must not contain control characters");
        }
        if matches!(b, b' ' | b'~' | b'^' | b':' | b'?' | b'*' | b'[' | b'\\') {
            return Err("ref names must not contain space, ~, ^, :, ?, *, [ or \\");
        }
    }
    for component in name.split(|&b| b == b'/') {
        if component.is_empty() {
            return Err("ref names must not contain empty components ('//')");
        }
        if component.starts_with(b".") {
            return Err("ref name components must not start with '.'");
        }
        if component.ends_with(b".lock") {
            return Err("ref name components must not end with '.lock'");
        }
        if component.len() > MAX_REF_COMPONENT_BYTES {
            return Err("ref name components must be at most 255 bytes long");
        }
    }
    Ok(())
}

/// The first pair of names that cannot exist together because one is a directory of the
/// other in git's ref namespace (`refs/heads/a` and `refs/heads/a/b`): git stores refs as
/// files, and every clone of a repository holding both fails. `names` must be sorted.
pub fn directory_conflict<'a, N: AsRef<[u8]> + ?Sized + 'a>(
    sorted: impl IntoIterator<Item = &'a N>,
) -> Option<(&'a [u8], &'a [u8])> {
    // In sorted order a name is followed by its own sub-names before any sibling that
    // sorts after `name/` (only bytes below '/' can come between, and those end the
    // prefix), so the sub-names of a name are met while it is on the stack of open prefixes.
    let mut open: Vec<&[u8]> = Vec::new();
    for name in sorted {
        let name = name.as_ref();
        while let Some(last) = open.last() {
            if is_directory_of(last, name) {
                return Some((last, name));
            }
            if name.starts_with(last) {
                break;
            }
            open.pop();
        }
        open.push(name);
    }
    None
}

/// Whether `dir/…` names a ref below `dir` (`refs/heads/a` is a directory of `refs/heads/a/b`).
pub fn is_directory_of(dir: &[u8], name: &[u8]) -> bool {
    name.len() > dir.len() && name.starts_with(dir) && name[dir.len()] == b'/'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_git_accepts() {
        for ok in [
            "HEAD",
            "refs/heads/main",
            "refs/tags/v1.0",
            "refs/heads/feature/x-y_z",
            "refs/notes/commits",
            "refs/pull/12/head",
            "refs/heads/ünïcode",
            &format!("refs/heads/{}", "a".repeat(255)),
        ] {
            assert_eq!(check_ref_name(ok.as_bytes()), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_what_git_refuses() {
        for bad in [
            "main",
            "refs/heads/",
            "refs/heads/a..b",
            "refs/heads/.hidden",
            "refs/heads/x.lock",
            "refs/heads/a b",
            "refs/heads/a~1",
            "refs/heads/a^",
            "refs/heads/a:b",
            "refs/heads/a?",
            "refs/heads/a*",
            "refs/heads/a[",
            "refs/heads/a\\b",
            "refs/heads//a",
            "refs/heads/a@{1}",
            "refs/heads/a.",
            "refs/heads/a\x01",
            "refs/../../etc/passwd",
        ] {
            assert!(check_ref_name(bad.as_bytes()).is_err(), "{bad}");
        }
        let long_component = format!("refs/heads/{}", "a".repeat(256));
        let long_name = format!("refs/heads/{}", "abc/".repeat(300));
        for bad in [long_component, long_name.trim_end_matches('/').to_owned()] {
            assert!(check_ref_name(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn finds_directory_file_conflicts() {
        let conflict = |names: &[&str]| {
            let mut names: Vec<&[u8]> = names.iter().map(|n| n.as_bytes()).collect();
            names.sort();
            directory_conflict(names.iter().copied()).map(|(a, b)| {
                (
                    String::from_utf8_lossy(a).into_owned(),
                    String::from_utf8_lossy(b).into_owned(),
                )
            })
        };
        assert_eq!(
            conflict(&["refs/heads/a", "refs/heads/a-b", "refs/heads/ab"]),
            None
        );
        assert_eq!(
            conflict(&[
                "refs/heads/df",
                "refs/heads/df-x",
                "refs/heads/df.y",
                "refs/heads/df/x"
            ]),
            Some(("refs/heads/df".into(), "refs/heads/df/x".into()))
        );
        assert_eq!(
            conflict(&["refs/heads", "refs/heads/main", "refs/tags/v1"]),
            Some(("refs/heads".into(), "refs/heads/main".into()))
        );
        assert_eq!(
            conflict(&["refs/heads/a/b/c", "refs/heads/a/b"]),
            Some(("refs/heads/a/b".into(), "refs/heads/a/b/c".into()))
        );
        assert_eq!(
            conflict(&["refs/heads/x/a", "refs/heads/x/b", "refs/heads/y"]),
            None
        );
    }
}
