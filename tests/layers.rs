//! The layering `src/lib.rs` states is the layering the code has: a module imports only
//! modules of lower layers. Read from the source as text (`crate::NAME` outside comments).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layers, lowest first, as `src/lib.rs` states them. A module may import modules of
/// lower layers only; two modules in one layer do not import each other.
const LAYERS: &[&[&str]] = &[
    &["units", "role", "datapath", "checksum", "terminal", "manual"],
    &["protocol"],
    &["error"],
    &["copy"],
    &["sys"],
    &["link", "disk"],
    &["report"],
    &["cli"],
    &["config"],
    &["progress"],
    &["send"],
    &["recv", "raw", "http"],
    &["bench", "doctor", "shell"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a file names as `crate::NAME`, in code (not comments), including
/// the names inside `use crate::{a, b::c}`.
fn imports(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                for item in group.split(',') {
                    let name = item.trim().split("::").next().unwrap_or("").trim();
                    if !name.is_empty() && name != "self" {
                        found.insert(name.to_string());
                    }
                }
            } else {
                let name: String =
                    rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                found.insert(name);
            }
        }
    }
    found
}

#[test]
fn every_import_goes_down_the_stated_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let top = rel.iter().next().unwrap().to_string_lossy().trim_end_matches(".rs").to_string();
        // The binary, the library root and the build script are not modules of the library.
        if top == "lib" || top == "main" || top == "build" {
            continue;
        }
        let Some(own) = layer_of(&top) else {
            wrong.push(format!("{}: module `{top}` is in no layer of src/lib.rs", rel.display()));
            continue;
        };
        for name in imports(&std::fs::read_to_string(&file).unwrap()) {
            if name == top {
                continue;
            }
            match layer_of(&name) {
                Some(layer) if layer < own => {}
                _ => wrong.push(format!("{}: `{top}` imports `{name}`", rel.display())),
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the stated layers:\n{}", wrong.join("\n"));
}

#[test]
fn an_upward_import_is_found() {
    let text = "use crate::{datapath::DataPath, recv};\n// crate::bench in a comment\nlet x = crate::send::run;";
    let found: Vec<String> = imports(text).into_iter().collect();
    assert_eq!(found, ["datapath", "recv", "send"]);
}
