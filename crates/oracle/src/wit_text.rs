//! WIT text of the WASI fixtures at the versions a case needs (shared by the oracle's own tests
//! and `tests/fidelity.rs`).

/// Rewrites WASI text vendored at `from` to package version `to`. Items `@since` a version newer
/// than `to` are kept, their gate lowered to `to` (wit-parser rejects a gate newer than the
/// package); the host's newer version has them anyway.
pub fn rewrite_version(text: &str, from: &str, to: &str) -> String {
    let target = semver::Version::parse(to).expect("semver");
    text.replace(&format!("@{from}"), &format!("@{to}"))
        .lines()
        .map(|l| {
            let t = l.trim_start();
            if let Some(rest) = t.strip_prefix("@since(version = ") {
                let v = rest.trim_end_matches(')').trim();
                if semver::Version::parse(v).is_ok_and(|v| v > target) {
                    let indent = &l[..l.len() - t.len()];
                    return format!("{indent}@since(version = {to})");
                }
            }
            l.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}
