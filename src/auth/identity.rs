//! Identity names.

/// Identity names follow the rules of a repository owner: 1 to 100 letters, digits, `-`,
/// `_` and `.`, not starting with `.`, without `..`.
pub fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !name.starts_with('.')
        && !name.contains("..");
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid identity name {name:?}: 1 to 100 letters, digits, '-', '_' or '.', not starting with '.'"
        ))
    }
}
