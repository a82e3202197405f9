//! The layering rule of `DESIGN.md`, held until the layers are crates and
//! Cargo holds it: a module may name (`crate::...`) only modules of a lower
//! layer, and no front end names another.

use std::collections::BTreeSet;
use std::path::Path;

/// Each top-level module of `src/` and its layer, lowest first.
const LAYERS: &[(&str, u8)] = &[
    // Leaves every layer may use.
    ("client", 0),
    ("error", 0),
    ("names", 0),
    ("config", 0),
    ("metrics", 0),
    ("executor", 0),
    ("workers", 0),
    ("engine", 1),
    // Storage implements the engine's commit log.
    ("storage", 2),
    ("sql", 3),
    ("session", 4),
    ("server", 5),
    // Replication (WAL senders and the replica's receiver), beside server.
    ("replication", 5),
    // Front ends: on `server` and `session`, never on each other.
    ("pgwire", 6),
    ("http", 6),
    ("flight", 6),
    ("repl", 7),
    ("transfer", 7),
];

const FRONT_ENDS: u8 = 6;

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, l)| *l)
}

/// The top-level modules a file names through `crate::`, comments aside.
fn named_modules(text: &str) -> BTreeSet<String> {
    let mut named = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name.is_empty() {
                // `crate::{a, b}`: every name in the braces.
                if let Some(group) = after.strip_prefix('{') {
                    let group = group.split('}').next().unwrap_or("");
                    for part in group.split(',') {
                        let part = part.trim().split("::").next().unwrap_or("").trim();
                        if !part.is_empty() {
                            named.insert(part.to_string());
                        }
                    }
                }
            } else {
                named.insert(name);
            }
            rest = after;
        }
    }
    named
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_layer_names_a_layer_above_it_and_no_front_end_names_another() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    let mut checked = 0;
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.iter().next().unwrap().to_string_lossy();
        let module = first.trim_end_matches(".rs");
        // The composition root wires every layer together.
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(own) = layer(module) else {
            violations.push(format!(
                "src/{}: module `{module}` has no layer in tests/it/layers.rs",
                relative.display()
            ));
            continue;
        };
        checked += 1;
        let text = std::fs::read_to_string(file).unwrap();
        for named in named_modules(&text) {
            if named == module {
                continue;
            }
            let Some(theirs) = layer(&named) else {
                violations.push(format!(
                    "src/{} names crate::{named}, which is no module with a layer (use its module's path)",
                    relative.display()
                ));
                continue;
            };
            let allowed = if own == 0 { theirs == 0 } else { theirs < own };
            if !allowed {
                violations.push(format!(
                    "src/{} ({module}, layer {own}) names crate::{named} (layer {theirs})",
                    relative.display()
                ));
            }
            if own == FRONT_ENDS && theirs == FRONT_ENDS {
                violations.push(format!(
                    "src/{}: front end {module} names front end {named}",
                    relative.display()
                ));
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} files read: is src/ where it was?"
    );
    assert!(
        violations.is_empty(),
        "layering violations:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_scanner_sees_grouped_and_inline_paths() {
    let named = named_modules(
        "use crate::{engine::Database, error::Result};\nlet x = crate::sql::parse(s); // crate::pgwire\n",
    );
    assert_eq!(
        named.into_iter().collect::<Vec<_>>(),
        vec!["engine", "error", "sql"]
    );
}
