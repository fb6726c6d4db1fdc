//! The documentation holds together: every relative link in `README.md`, `CHANGELOG.md` and
//! `docs/*.md` reaches a file that exists and, for a `#fragment`, a heading of that file (by
//! GitHub's anchor rules), and every variable the configuration reads is documented with its
//! default in `docs/operations.md` and listed in `.env.sample`. Text moves between files; a
//! link left pointing at the old place would otherwise only be found by a reader.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The documents whose links are checked.
fn documents() -> Vec<PathBuf> {
    let root = repo();
    let mut docs: Vec<PathBuf> = ["README.md", "CHANGELOG.md"]
        .iter()
        .map(|f| root.join(f))
        .filter(|p| p.exists())
        .collect();
    let mut more: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("a docs/ folder")
        .map(|e| e.expect("a docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    more.sort();
    docs.extend(more);
    docs
}

/// Lines outside fenced code blocks, with inline code spans blanked (a link inside code is an
/// example, not a link).
fn prose_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fenced = false;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut kept = String::new();
        let mut in_code = false;
        for c in line.chars() {
            if c == '`' {
                in_code = !in_code;
                kept.push(c);
            } else if !in_code {
                kept.push(c);
            }
        }
        out.push((i + 1, kept));
    }
    out
}

/// The targets of inline links and images (`[text](target)`) and of reference definitions
/// (`[name]: target`) on one line.
fn link_targets(line: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("](") {
        let tail = &rest[at + 2..];
        let Some(end) = tail.find(')') else { break };
        // `(target "title")`: the target is the first word.
        let target = tail[..end].split_whitespace().next().unwrap_or("");
        targets.push(target.trim_matches(['<', '>']).to_owned());
        rest = &tail[end..];
    }
    let trimmed = line.trim_start();
    if trimmed.starts_with('[') {
        if let Some((_, target)) = trimmed.split_once("]: ") {
            if let Some(t) = target.split_whitespace().next() {
                targets.push(t.to_owned());
            }
        }
    }
    targets
}

/// GitHub's anchor of a heading: the rendered text lower-cased, punctuation other than `-`
/// and `_` dropped, spaces made hyphens.
fn slug(heading: &str) -> String {
    // A link in a heading renders as its text.
    let mut text = String::new();
    let mut rest = heading;
    while let Some(open) = rest.find('[') {
        match rest[open..].find("](") {
            Some(mid) => {
                text.push_str(&rest[..open]);
                text.push_str(&rest[open + 1..open + mid]);
                let after = &rest[open + mid + 2..];
                rest = after.find(')').map_or("", |close| &after[close + 1..]);
            }
            None => break,
        }
    }
    text.push_str(rest);
    text.trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Every anchor a document's headings produce, duplicates numbered as GitHub numbers them.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let heading = line.trim_start_matches('#');
        if !heading.starts_with(' ') {
            continue;
        }
        let base = slug(heading);
        let mut anchor = base.clone();
        let mut n = 0;
        while seen.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        seen.insert(anchor);
    }
    seen
}

/// What is wrong with one link of `doc`, if anything.
fn check_link(doc: &Path, target: &str) -> Option<String> {
    if target.is_empty() {
        return Some("an empty link".to_owned());
    }
    if target.contains("://") || target.starts_with("mailto:") {
        return None;
    }
    let (file, fragment) = match target.split_once('#') {
        Some((f, a)) => (f, Some(a)),
        None => (target, None),
    };
    let path = if file.is_empty() {
        doc.to_path_buf()
    } else {
        doc.parent().unwrap_or(Path::new(".")).join(file)
    };
    if !path.exists() {
        return Some(format!("{target}: no file {}", path.display()));
    }
    let fragment = fragment?;
    if path.is_dir() || path.extension().is_none_or(|x| x != "md") {
        return Some(format!(
            "{target}: an anchor into a file that is not Markdown"
        ));
    }
    if anchors(&read(&path)).contains(fragment) {
        None
    } else {
        Some(format!("{target}: no heading with anchor #{fragment}"))
    }
}

#[test]
fn every_relative_link_reaches_a_file_and_a_heading() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for doc in documents() {
        for (line, text) in prose_lines(&read(&doc)) {
            for target in link_targets(&text) {
                checked += 1;
                if let Some(problem) = check_link(&doc, &target) {
                    let name = doc
                        .strip_prefix(repo())
                        .unwrap_or(&doc)
                        .display()
                        .to_string();
                    broken.push(format!("{name}:{line}: {problem}"));
                }
            }
        }
    }
    assert!(
        checked > 20,
        "only {checked} links found: is the parser blind?"
    );
    assert!(broken.is_empty(), "dangling links:\n{}", broken.join("\n"));
}

#[test]
fn the_link_check_sees_what_github_sees() {
    assert_eq!(slug(" The platform's fee"), "the-platforms-fee");
    assert_eq!(
        slug(" `openpleb.prune` and [Jobs](x.md)"),
        "openplebprune-and-jobs"
    );
    assert_eq!(slug(" Timers and lapses"), "timers-and-lapses");
    let doc = "# A\n## Same\n```\n## Not a heading\n```\n## Same\n";
    let found = anchors(doc);
    assert!(found.contains("same") && found.contains("same-1") && !found.contains("not-a-heading"));
    assert_eq!(
        link_targets("see [a](x.md#b) and ![i](img.png \"t\") and `[c](code.md)`"),
        vec!["x.md#b", "img.png", "code.md"]
    );
    assert_eq!(prose_lines("a `[c](code.md)` b")[0].1, "a `` b");
}

/// The variables `common/src/config/load.rs` reads (every name with an underscore in a string
/// literal there: defaults such as `"EUR"` have none).
fn configuration_variables() -> BTreeSet<String> {
    let load = read(&repo().join("common/src/config/load.rs"));
    load.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            s.contains('_')
                && s.len() > 3
                && s.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_configuration_variable_is_documented() {
    let ops = read(&repo().join("docs/operations.md"));
    let table = ops
        .split("\n## Configuration\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("docs/operations.md has a Configuration section");
    let sample = read(&repo().join(".env.sample"));
    let vars = configuration_variables();
    assert!(vars.len() > 40, "only {} variables found", vars.len());
    let mut missing = Vec::new();
    for var in &vars {
        // `PLATFORM_FEE_PERCENT` / `_FLAT` documents both in one row.
        let documented = table.contains(&format!("`{var}`"))
            || var
                .strip_suffix("_FLAT")
                .is_some_and(|stem| table.contains(&format!("`{stem}_PERCENT` / `_FLAT`")));
        if !documented {
            missing.push(format!(
                "{var}: not in the Configuration table of docs/operations.md"
            ));
        }
        let listed = sample.lines().any(|l| {
            l.trim_start_matches(['#', ' '])
                .starts_with(&format!("{var}="))
        });
        if !listed {
            missing.push(format!("{var}: not in .env.sample"));
        }
    }
    assert!(
        missing.is_empty(),
        "undocumented configuration:\n{}",
        missing.join("\n")
    );
}
