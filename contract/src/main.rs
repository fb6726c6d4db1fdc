//! `contract-check`: the current API documents against their released copies.
//!
//! ```text
//! contract-check [ROOT]            openapi.yaml and openapi-admin.yaml under ROOT (default .)
//!                                  against ROOT/api/released/, CHANGELOG.md from ROOT
//! contract-check RELEASED CURRENT [CHANGELOG]   one pair of documents
//! ```
//!
//! Prints each breaking change and warning, a count of additions, and exits 1 when the
//! versioning rule is not kept (see `docs/trading.md`, "Versions and releases").

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use openpleb_contract::{judge, parse, Severity};

/// The documents a release consists of.
const DOCUMENTS: [&str; 2] = ["openapi.yaml", "openapi-admin.yaml"];

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Checks one pair; whether it may go out.
fn check(released: &Path, current: &Path, changelog: &str) -> Result<bool, String> {
    let old = parse(&read(released)?).map_err(|e| format!("{}: {e}", released.display()))?;
    let new = parse(&read(current)?).map_err(|e| format!("{}: {e}", current.display()))?;
    let verdict = judge(&old, &new, changelog)?;
    let added = verdict
        .changes
        .iter()
        .filter(|c| c.severity == Severity::Info)
        .count();
    println!(
        "{}: {} (released {}): {} breaking, {} warning(s), {} other change(s)",
        current.display(),
        verdict.current.text,
        verdict.released.text,
        verdict.breaking().count(),
        verdict
            .changes
            .iter()
            .filter(|c| c.severity == Severity::Warning)
            .count(),
        added
    );
    for change in verdict
        .changes
        .iter()
        .filter(|c| c.severity > Severity::Info)
    {
        println!("  {change}");
    }
    for problem in &verdict.problems {
        println!("  FAIL: {problem}");
    }
    Ok(verdict.problems.is_empty())
}

fn run(args: &[String]) -> Result<bool, String> {
    match args {
        [released, current] | [released, current, _] => {
            let changelog = match args.get(2) {
                Some(path) => read(Path::new(path))?,
                None => String::new(),
            };
            check(Path::new(released), Path::new(current), &changelog)
        }
        [] | [_] => {
            let root = PathBuf::from(args.first().map_or(".", String::as_str));
            let changelog = read(&root.join("CHANGELOG.md"))?;
            let mut ok = true;
            for doc in DOCUMENTS {
                ok &= check(
                    &root.join("api/released").join(doc),
                    &root.join(doc),
                    &changelog,
                )?;
            }
            Ok(ok)
        }
        _ => {
            Err("usage: contract-check [ROOT] | contract-check RELEASED CURRENT [CHANGELOG]".into())
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("contract-check: {e}");
            ExitCode::from(2)
        }
    }
}
