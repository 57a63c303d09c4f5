//! Ref globs: `*` matches within one path segment, a `**` segment matches any number of
//! segments (none included). `refs/heads/agent/*` matches `refs/heads/agent/x` but not
//! `refs/heads/agent/x/y`; `refs/heads/agent/**` matches both.

/// Longest glob or ref name considered: longer inputs never match.
pub const MAX_GLOB_INPUT: usize = 255;

/// Whether `name` matches `glob`. Runs in O(segments² × segment length) at worst.
pub fn matches(glob: &str, name: &str) -> bool {
    if glob.len() > MAX_GLOB_INPUT || name.len() > MAX_GLOB_INPUT {
        return false;
    }
    let pattern: Vec<&str> = glob.split('/').collect();
    let segments: Vec<&str> = name.split('/').collect();
    // reachable[j]: the pattern so far can consume exactly the first j segments.
    let mut reachable = vec![false; segments.len() + 1];
    reachable[0] = true;
    for part in &pattern {
        let mut next = vec![false; segments.len() + 1];
        if *part == "**" {
            let mut any = false;
            for j in 0..=segments.len() {
                any |= reachable[j];
                next[j] = any;
            }
        } else {
            for j in 0..segments.len() {
                if reachable[j] && segment_matches(part.as_bytes(), segments[j].as_bytes()) {
                    next[j + 1] = true;
                }
            }
        }
        reachable = next;
    }
    reachable[segments.len()]
}

/// `*` matches any run of bytes within the segment; everything else matches itself.
fn segment_matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// Why a glob cannot be used, if it cannot.
pub fn check(glob: &str) -> Result<(), String> {
    if glob.is_empty() || glob.len() > MAX_GLOB_INPUT {
        return Err(format!(
            "a ref glob must be 1 to {MAX_GLOB_INPUT} bytes long"
        ));
    }
    if !glob.starts_with("refs/") && glob != "**" {
        return Err(format!("ref glob {glob:?} must start with refs/"));
    }
    if glob
        .split('/')
        .any(|s| s.is_empty() || (s.contains("**") && s != "**"))
    {
        return Err(format!(
            "ref glob {glob:?}: empty segment, or ** not alone in its segment"
        ));
    }
    if glob
        .chars()
        .any(|c| c.is_control() || c == ' ' || c == '"' || c == '\\')
    {
        return Err(format!("ref glob {glob:?} contains a forbidden character"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_segment_and_many() {
        assert!(matches("refs/heads/agent/*", "refs/heads/agent/x"));
        assert!(!matches("refs/heads/agent/*", "refs/heads/agent/x/y"));
        assert!(!matches("refs/heads/agent/*", "refs/heads/agent"));
        assert!(matches("refs/heads/agent/**", "refs/heads/agent/x/y"));
        assert!(matches("refs/heads/agent/**", "refs/heads/agent"));
        assert!(matches("refs/tags/v*", "refs/tags/v1.2"));
        assert!(!matches("refs/tags/v*", "refs/tags/x1"));
        assert!(matches("refs/**/main", "refs/heads/main"));
        assert!(matches("refs/**/main", "refs/remotes/origin/main"));
        assert!(!matches("refs/**/main", "refs/heads/main2"));
        assert!(matches("**", "refs/heads/anything/at/all"));
        assert!(matches("refs/heads/a*b*c", "refs/heads/aXbYbc"));
        assert!(!matches("refs/heads/a*b*c", "refs/heads/aXbY"));
        assert!(matches("refs/heads/main", "refs/heads/main"));
        assert!(!matches("refs/heads/main", "refs/heads/mainx"));
    }

    #[test]
    fn long_inputs_never_match_and_stay_fast() {
        let long = format!("refs/{}", "a/".repeat(200));
        assert!(!matches("**", &long));
        let glob = format!("refs/{}", "**/".repeat(60));
        let name = format!("refs/{}x", "a/".repeat(120));
        assert!(matches(&format!("{glob}x"), &name));
        let stars = format!("refs/heads/{}b", "*a".repeat(100));
        assert!(!matches(&stars, &format!("refs/heads/{}", "a".repeat(200))));
    }

    #[test]
    fn bad_globs() {
        assert!(check("refs/heads/agent/**").is_ok());
        assert!(check("heads/x").is_err());
        assert!(check("refs//x").is_err());
        assert!(check("refs/a**").is_err());
        assert!(check("refs/\"x").is_err());
        assert!(check("").is_err());
    }
}
