//! The versioning rule over a document's changes: `info.version` is semantic; a breaking
//! change needs the major version raised (the minor one while the major is 0, as semantic
//! versioning allows before 1.0.0); a version never goes back; and the current version has
//! its entry in the changelog, so every client author can read what changed.

use serde_json::Value;

use crate::{diff, Change, Severity};

/// A semantic version's numbers (a pre-release or build suffix is kept, not ordered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// Major.
    pub major: u64,
    /// Minor.
    pub minor: u64,
    /// Patch.
    pub patch: u64,
    /// As written.
    pub text: String,
}

impl Version {
    /// `MAJOR.MINOR.PATCH`, optionally followed by `-pre` or `+build`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let core = text.split(['-', '+']).next().unwrap_or("");
        let numbers: Vec<u64> = core
            .split('.')
            .map(|n| n.parse::<u64>())
            .collect::<Result<_, _>>()
            .map_err(|_| format!("`{text}` is not a semantic version (MAJOR.MINOR.PATCH)"))?;
        match numbers[..] {
            [major, minor, patch] => Ok(Self {
                major,
                minor,
                patch,
                text: text.to_owned(),
            }),
            _ => Err(format!(
                "`{text}` is not a semantic version (MAJOR.MINOR.PATCH)"
            )),
        }
    }

    fn triple(&self) -> (u64, u64, u64) {
        (self.major, self.minor, self.patch)
    }

    /// Whether going from `self` to `next` announces a breaking change.
    pub fn allows_breaking(&self, next: &Version) -> bool {
        if self.major == 0 {
            next.major > 0 || next.minor > self.minor
        } else {
            next.major > self.major
        }
    }

    /// The lowest version that announces a breaking change after this one.
    pub fn next_breaking(&self) -> String {
        if self.major == 0 {
            format!("0.{}.0", self.minor + 1)
        } else {
            format!("{}.0.0", self.major + 1)
        }
    }
}

/// A document's changes and what the versioning rule makes of them.
#[derive(Debug)]
pub struct Verdict {
    /// The released document's version.
    pub released: Version,
    /// The current document's version.
    pub current: Version,
    /// Every change, breaking ones first.
    pub changes: Vec<Change>,
    /// Why the current document may not go out as it is; empty when it may.
    pub problems: Vec<String>,
}

impl Verdict {
    /// The breaking changes.
    pub fn breaking(&self) -> impl Iterator<Item = &Change> {
        self.changes
            .iter()
            .filter(|c| c.severity == Severity::Breaking)
    }
}

fn version_of(doc: &Value, which: &str) -> Result<Version, String> {
    let text = doc
        .pointer("/info/version")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("the {which} document has no info.version"))?;
    Version::parse(text).map_err(|e| format!("the {which} document's info.version: {e}"))
}

/// Whether `changelog` has an entry (a `## [VERSION]` heading) for `version`.
pub fn has_entry(changelog: &str, version: &str) -> bool {
    let heading = format!("## [{version}]");
    changelog
        .lines()
        .any(|l| l.trim_end().starts_with(&heading))
}

/// Compares `released` with `current` and applies the versioning rule, with `changelog` the
/// text of `CHANGELOG.md`.
pub fn judge(released: &Value, current: &Value, changelog: &str) -> Result<Verdict, String> {
    let old = version_of(released, "released")?;
    let new = version_of(current, "current")?;
    let changes = diff(released, current);
    let mut problems = Vec::new();
    if new.triple() < old.triple() {
        problems.push(format!(
            "info.version went back from {} to {}",
            old.text, new.text
        ));
    }
    let breaking = changes
        .iter()
        .filter(|c| c.severity == Severity::Breaking)
        .count();
    if breaking > 0 && !old.allows_breaking(&new) {
        problems.push(format!(
            "{breaking} breaking change(s) since {}: info.version must be at least {} \
             (a minor bump while 0.x, a major one from 1.0.0), with a CHANGELOG.md entry; \
             it is {}",
            old.text,
            old.next_breaking(),
            new.text
        ));
    }
    if !has_entry(changelog, &new.text) {
        problems.push(format!(
            "CHANGELOG.md has no entry `## [{}]` for the current version",
            new.text
        ));
    }
    Ok(Verdict {
        released: old,
        current: new,
        changes,
        problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).expect("a version")
    }

    #[test]
    fn while_0x_a_minor_bump_announces_a_break_and_after_1_a_major_one() {
        assert!(v("0.1.0").allows_breaking(&v("0.2.0")));
        assert!(v("0.1.3").allows_breaking(&v("1.0.0")));
        assert!(!v("0.1.0").allows_breaking(&v("0.1.1")));
        assert!(v("1.2.0").allows_breaking(&v("2.0.0")));
        assert!(!v("1.2.0").allows_breaking(&v("1.3.0")));
        assert_eq!(v("0.1.0").next_breaking(), "0.2.0");
        assert_eq!(v("1.4.2").next_breaking(), "2.0.0");
    }

    #[test]
    fn versions_parse() {
        assert_eq!(v("1.2.3-rc.1").triple(), (1, 2, 3));
        assert!(Version::parse("1.2").is_err());
        assert!(Version::parse("v1.2.3").is_err());
    }

    #[test]
    fn changelog_entries_are_headings() {
        let log = "# Changelog\n\n## [Unreleased]\n\n## [0.2.0] - 2026-12-07\n";
        assert!(has_entry(log, "0.2.0"));
        assert!(!has_entry(log, "0.1.0"));
        assert!(!has_entry("see [0.2.0]", "0.2.0"));
    }
}
