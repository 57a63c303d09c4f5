//! Ref name validation, following `git check-ref-format`.

/// Why a ref name is refused, in git's terms.
pub fn check_ref_name(name: &[u8]) -> Result<(), &'static str> {
    if name == b"HEAD" {
        return Ok(());
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
    }
    Ok(())
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
    }
}
