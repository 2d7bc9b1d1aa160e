//! The source tree's dependency rule: the library's top-level modules import each other one
//! way only (no module imports one that imports it back, directly or round a longer circle),
//! and the real backend never reaches into the simulator's driver.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

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

/// For each top-level module of the library (`src/<m>.rs` and `src/<m>/`), the other
/// top-level modules its code names as `crate::<other>`.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![];
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "bin" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let named = graph.entry(module.clone()).or_default();
        for (at, _) in text.match_indices("crate::") {
            let rest = &text[at + "crate::".len()..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let other = &rest[..end];
            if !other.is_empty() && other != module {
                named.insert(other.to_string());
            }
        }
    }
    graph
}

/// A circle of imports through `module`, if there is one.
fn circle(
    graph: &BTreeMap<String, BTreeSet<String>>,
    module: &str,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(i) = path.iter().position(|m| m == module) {
        let mut c = path[i..].to_vec();
        c.push(module.to_string());
        return Some(c);
    }
    if done.contains(module) {
        return None;
    }
    path.push(module.to_string());
    for next in graph.get(module).into_iter().flatten() {
        if let Some(c) = circle(graph, next, path, done) {
            return Some(c);
        }
    }
    path.pop();
    done.insert(module.to_string());
    None
}

#[test]
fn top_level_modules_import_each_other_one_way() {
    let graph = imports();
    assert!(graph.len() > 10, "read the tree: {:?}", graph.keys());
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        if let Some(c) = circle(&graph, module, &mut vec![], &mut done) {
            panic!("modules import round a circle: {}", c.join(" -> "));
        }
    }
}

#[test]
fn the_backends_do_not_import_each_other() {
    let graph = imports();
    for (a, b) in [("real", "sim"), ("sim", "real")] {
        assert!(
            !graph.get(a).is_some_and(|named| named.contains(b)),
            "`{a}` imports `{b}`"
        );
    }
}
