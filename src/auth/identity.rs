//! Identity names.

/// Identity names follow the rules of a repository owner (`store::check_name_part`): 1 to
/// 100 letters, digits, `-`, `_` and `.`, not starting with `.` or `-`, without `..`, not
/// ending in `.` or `.lock`, and no Windows device name. The words that name sets of
/// identities in ref policies (`human`, `agent`, `anyone`, …) are no identity's name.
pub fn check_name(name: &str) -> Result<(), String> {
    crate::store::check_name_part(name)
        .map_err(|reason| format!("invalid identity name {name:?}: {reason}"))?;
    if crate::store::policy::RESERVED_NAMES
        .iter()
        .any(|word| word.eq_ignore_ascii_case(name))
    {
        return Err(format!(
            "invalid identity name {name:?}: it names a set of identities in ref policies"
        ));
    }
    Ok(())
}
