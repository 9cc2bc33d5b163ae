//! Tidy: the workspace's conventions checked as tests, in rust-analyzer's manner, so that a
//! reviewer never has to. Each test reads the source tree as text; none builds anything.
//!
//! - data flows up the step numbers, so a step crate never depends on a higher-numbered step or
//!   on `pipelines` (docs/architecture.md, "Invariants");
//! - every source file opens with a `//!` line saying what it is for;
//! - every crate inherits the workspace lints;
//! - every dependency a manifest names is used by the code that can see it;
//! - no two modules of a crate import each other, directly or around a longer circle;
//! - no function takes a tuple of more than two values as one parameter (name the type instead).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The workspace's members: `(package name, folder)`.
fn members() -> Vec<(String, PathBuf)> {
    let root = e2e::repo();
    let mut folders: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    folders.sort();
    folders.push(root.join("pipelines"));
    folders.push(root.join("tests"));
    folders.into_iter().map(|dir| (package_name(&dir), dir)).collect()
}

fn package_name(dir: &Path) -> String {
    let manifest = read(&dir.join("Cargo.toml"));
    manifest
        .lines()
        .find_map(|l| l.strip_prefix("name = \"").and_then(|r| r.strip_suffix('"')))
        .unwrap_or_else(|| panic!("{} has no package name", dir.display()))
        .to_string()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The dependencies a manifest names, by kind (`dependencies`, `dev-dependencies`,
/// `build-dependencies`), as the names code refers to them by.
fn dependencies(manifest: &str) -> BTreeMap<&'static str, Vec<String>> {
    let mut out: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut section: Option<&'static str> = None;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = match line {
                "[dependencies]" => Some("dependencies"),
                "[dev-dependencies]" => Some("dev-dependencies"),
                "[build-dependencies]" => Some("build-dependencies"),
                _ => None,
            };
            continue;
        }
        let Some(kind) = section else { continue };
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = line.split(['=', '.', ' ']).next().unwrap_or_default();
        if !key.is_empty() {
            out.entry(kind).or_default().push(key.to_string());
        }
    }
    out
}

/// A step crate's number: `step07-eda` is 7, `mlops-core` 0; `None` for the others.
fn step_number(name: &str) -> Option<u32> {
    if name == "mlops-core" {
        return Some(0);
    }
    name.strip_prefix("step").and_then(|r| r.get(..2)).and_then(|n| n.parse().ok())
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if !matches!(path.file_name().and_then(|n| n.to_str()), Some("target" | "fuzz")) {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn no_step_depends_on_a_higher_numbered_step_or_on_pipelines() {
    let mut wrong = Vec::new();
    for (name, dir) in members() {
        let Some(own) = step_number(&name) else { continue };
        for (kind, deps) in dependencies(&read(&dir.join("Cargo.toml"))) {
            for dep in deps {
                let dep = dep.replace('_', "-");
                let higher = step_number(&dep).is_some_and(|n| n >= own && dep != name);
                if higher || dep == "pipelines" || dep == "e2e" {
                    wrong.push(format!("{name} -> {dep} ({kind})"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "data flows up the step numbers, dependencies point down:\n{}", wrong.join("\n"));
}

#[test]
fn every_source_file_opens_with_a_doc_line() {
    let mut missing = Vec::new();
    for (_, dir) in members() {
        for file in rust_files(&dir) {
            if !read(&file).trim_start().starts_with("//!") {
                missing.push(file.strip_prefix(e2e::repo()).unwrap_or(&file).display().to_string());
            }
        }
    }
    assert!(missing.is_empty(), "files without an opening `//!` line (what the file is for):\n{}", missing.join("\n"));
}

#[test]
fn every_crate_inherits_the_workspace_lints() {
    let mut missing = Vec::new();
    for (name, dir) in members() {
        let manifest = read(&dir.join("Cargo.toml"));
        let inherits = manifest.split("[lints]").nth(1).is_some_and(|rest| {
            rest.lines().map(str::trim).take_while(|l| !l.starts_with('[')).any(|l| l == "workspace = true")
        });
        if !inherits {
            missing.push(name);
        }
    }
    assert!(missing.is_empty(), "crates without `[lints] workspace = true`: {missing:?}");
}

/// The text of the files that can see a dependency of `kind`, comments left out.
fn code_seeing(dir: &Path, kind: &str) -> String {
    let folders: &[&str] = match kind {
        "dependencies" => &["src"],
        "build-dependencies" => &[],
        _ => &["src", "tests", "benches", "examples"],
    };
    let mut files: Vec<PathBuf> = folders.iter().flat_map(|f| rust_files(&dir.join(f))).collect();
    if kind == "build-dependencies" {
        files.push(dir.join("build.rs"));
    }
    // Modules a file includes from elsewhere (`#[path = "../other/fixture.rs"] mod fixture;`).
    let mut i = 0;
    while i < files.len() {
        let text = std::fs::read_to_string(&files[i]).unwrap_or_default();
        for (at, _) in text.match_indices("#[path = \"") {
            let rest = &text[at + 10..];
            if let Some(end) = rest.find('"') {
                let target = files[i].parent().unwrap_or(dir).join(&rest[..end]);
                if target.is_file() && !files.contains(&target) {
                    files.push(target);
                }
            }
        }
        i += 1;
    }
    files
        .iter()
        .filter(|f| f.is_file())
        .map(|f| read(f).lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_dependency_is_used() {
    let mut unused = Vec::new();
    for (name, dir) in members() {
        let manifest = read(&dir.join("Cargo.toml"));
        for (kind, deps) in dependencies(&manifest) {
            let code = code_seeing(&dir, kind);
            let normal = dependencies(&manifest).get("dependencies").cloned().unwrap_or_default();
            for dep in deps {
                // A dev-dependency that repeats a normal one only to add features is used by it.
                if kind == "dev-dependencies" && normal.contains(&dep) {
                    continue;
                }
                let ident = dep.replace('-', "_");
                let used = [format!("{ident}::"), format!("use {ident}"), format!("{ident} as ")]
                    .iter()
                    .any(|needle| code_mentions(&code, needle));
                if !used {
                    unused.push(format!("{name}: {dep} ({kind})"));
                }
            }
        }
    }
    assert!(unused.is_empty(), "dependencies that nothing uses:\n{}", unused.join("\n"));
}

/// Whether `needle` occurs in `code` as the start of a path (not as the end of a longer name).
fn code_mentions(code: &str, needle: &str) -> bool {
    code.match_indices(needle)
        .any(|(at, _)| code[..at].chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':')))
}

/// One crate's modules: each file's module path (`["frame", "convert"]`) and the module paths it
/// refers to through `crate::` and `super::`.
struct ModuleGraph {
    modules: BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
}

impl ModuleGraph {
    /// The modules of the crate whose root (`lib.rs` or `main.rs`) is in `src`, leaving out the
    /// folders of other crate roots (a binary's `src/cli/main.rs`).
    fn of(src: &Path, others: &[PathBuf]) -> ModuleGraph {
        let mut modules = BTreeMap::new();
        for file in rust_files(src) {
            if others.iter().any(|o| file.starts_with(o)) {
                continue;
            }
            let rel = file.strip_prefix(src).unwrap();
            let mut path: Vec<String> = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
            let last = path.pop().unwrap_or_default();
            let stem = last.trim_end_matches(".rs");
            if !matches!(stem, "lib" | "main" | "mod") {
                path.push(stem.to_string());
            }
            if rel.starts_with("bin") {
                continue;
            }
            let refs = references(&read(&file), &path);
            modules.insert(path, refs);
        }
        ModuleGraph { modules }
    }

    /// The sibling modules (same parent) that the subtree of `module` refers into.
    fn sibling_edges(&self) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
        let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
        for (from, refs) in &self.modules {
            for to in refs {
                // The first place where the two paths part: both sides below a common parent.
                let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
                if common < from.len() && common < to.len() {
                    let a = from[..=common].to_vec();
                    let b = to[..=common].to_vec();
                    if a.last() != Some(&"tests".to_string()) {
                        edges.entry(a).or_default().insert(b);
                    }
                }
            }
        }
        edges
    }

    /// Circles among sibling modules, each as the modules around it.
    fn circles(&self) -> Vec<Vec<String>> {
        let edges = self.sibling_edges();
        let mut found = BTreeSet::new();
        for start in edges.keys() {
            // Depth-first search for a way back to `start`.
            let mut stack = vec![(start.clone(), vec![start.clone()])];
            let mut seen = BTreeSet::new();
            while let Some((node, trail)) = stack.pop() {
                for next in edges.get(&node).into_iter().flatten() {
                    if next == start {
                        let mut names: Vec<String> = trail.iter().map(|m| m.join("::")).collect();
                        let min = names.iter().enumerate().min_by_key(|(_, n)| n.as_str()).map_or(0, |(i, _)| i);
                        names.rotate_left(min);
                        found.insert(names);
                    } else if seen.insert(next.clone()) {
                        let mut t = trail.clone();
                        t.push(next.clone());
                        stack.push((next.clone(), t));
                    }
                }
            }
        }
        found.into_iter().collect()
    }
}

/// The module paths a file refers to: `crate::a::b` and `super::c` in paths and in `use` trees.
fn references(text: &str, module: &[String]) -> BTreeSet<Vec<String>> {
    let code: String = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    let mut out = BTreeSet::new();
    // `use` trees, expanded: `use crate::{a::X, b::{Y, Z}};`.
    for stmt in code.split(';') {
        let Some(at) = stmt.find("use ") else { continue };
        let starts_word = stmt[..at].chars().next_back().is_none_or(|c| c.is_whitespace() || c == ')');
        let rest = stmt[at + 4..].trim_start();
        if !starts_word || !["crate", "super", "self"].iter().any(|p| rest.starts_with(p)) {
            continue;
        }
        let tree: String = rest.chars().filter(|c| !c.is_whitespace()).collect();
        for path in expand(&tree) {
            if let Some(p) = resolve(&path, module) {
                out.insert(p);
            }
        }
    }
    // Paths in code: `crate::a::b::f(..)`, `super::c::T`.
    let chars: Vec<char> = code.chars().collect();
    let text: String = chars.iter().collect();
    for start in ["crate::", "super::"] {
        for (at, _) in text.match_indices(start) {
            if text[..at].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let path: String =
                text[at..].chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
            let segments: Vec<String> = path.split("::").filter(|s| !s.is_empty()).map(String::from).collect();
            if let Some(p) = resolve(&segments, module) {
                out.insert(p);
            }
        }
    }
    out.remove(&Vec::new());
    out
}

/// The paths of a `use` tree without whitespace: `crate::{a::X,b::{Y,Z}}` gives
/// `[crate, a, X]`, `[crate, b, Y]`, `[crate, b, Z]`.
fn expand(tree: &str) -> Vec<Vec<String>> {
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap_or(tree);
        return vec![path.split("::").filter(|s| !s.is_empty()).map(String::from).collect()];
    };
    let prefix: Vec<String> = tree[..open].split("::").filter(|s| !s.is_empty()).map(String::from).collect();
    let Some(inner) = tree.rfind('}').and_then(|close| tree.get(open + 1..close)) else { return Vec::new() };
    let mut parts = Vec::new();
    let (mut depth, mut last) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[last..i]);
                last = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[last..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(|p| expand(p).into_iter().map(|rest| prefix.iter().cloned().chain(rest).collect()))
        .collect()
}

/// A path (`crate::a::X`, `super::b`) as the crate-relative path it names, or `None` when it
/// leaves the crate.
fn resolve(path: &[String], module: &[String]) -> Option<Vec<String>> {
    let mut segments = path.iter();
    let mut base: Vec<String> = match segments.next()?.as_str() {
        "crate" => Vec::new(),
        "super" => module[..module.len().checked_sub(1)?].to_vec(),
        "self" => module.to_vec(),
        _ => return None,
    };
    for s in segments {
        match s.as_str() {
            "super" => {
                base.pop()?;
            }
            "self" | "*" => {}
            name => base.push(name.to_string()),
        }
    }
    Some(base)
}

#[test]
fn no_two_modules_of_a_crate_import_each_other() {
    let mut circles = Vec::new();
    for (name, dir) in members() {
        let src = dir.join("src");
        // The library, and each binary whose `main.rs` has a folder of its own.
        let bins: Vec<PathBuf> = rust_files(&src)
            .into_iter()
            .filter(|f| f.file_name().is_some_and(|n| n == "main.rs") && f.parent() != Some(src.as_path()))
            .filter_map(|f| f.parent().map(Path::to_path_buf))
            .collect();
        let roots = std::iter::once((src.clone(), bins.clone())).chain(bins.iter().map(|b| (b.clone(), Vec::new())));
        for (root, others) in roots {
            let graph = ModuleGraph::of(&root, &others);
            // A reference names an item, not only a module: keep the longest prefix that is a module.
            let known: BTreeSet<Vec<String>> = graph.modules.keys().cloned().collect();
            let graph = ModuleGraph {
                modules: graph
                    .modules
                    .iter()
                    .map(|(m, refs)| {
                        let refs = refs
                            .iter()
                            .map(|r| {
                                (0..=r.len())
                                    .rev()
                                    .map(|n| r[..n].to_vec())
                                    .find(|p| known.contains(p))
                                    .unwrap_or_default()
                            })
                            .collect();
                        (m.clone(), refs)
                    })
                    .collect(),
            };
            for circle in graph.circles() {
                circles.push(format!("{name}: {}", circle.join(" -> ")));
            }
        }
    }
    assert!(
        circles.is_empty(),
        "modules that import each other (give the shared part its own module):\n{}",
        circles.join("\n")
    );
}

#[test]
fn the_circle_finder_sees_a_circle_through_use_trees_and_paths() {
    let a = references("use crate::{b::{X, Y}, c::Z};\nfn f() { super::d::g(); }", &["a".into(), "inner".into()]);
    let expected: BTreeSet<Vec<String>> = [vec!["b", "X"], vec!["b", "Y"], vec!["c", "Z"], vec!["a", "d", "g"]]
        .into_iter()
        .map(|p| p.into_iter().map(String::from).collect())
        .collect();
    assert_eq!(a, expected);
    let module = |m: &str, refs: &[&str]| {
        (vec![m.to_string()], refs.iter().map(|r| vec![r.to_string()]).collect::<BTreeSet<_>>())
    };
    let graph = ModuleGraph {
        modules: [module("a", &["b"]), module("b", &["c"]), module("c", &["a"]), module("d", &["a"])]
            .into_iter()
            .collect(),
    };
    assert_eq!(graph.circles(), vec![vec!["a".to_string(), "b".into(), "c".into()]]);
}

/// Parameters destructured from a tuple of three or more values, as `file:line: (a, b, c)`.
fn wide_tuple_parameters(file: &Path) -> Vec<String> {
    let text = read(file);
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    for (at, _) in text.match_indices("): (") {
        // Walk back to the `(` that opens the pattern.
        let mut depth = 0;
        let mut open = None;
        for i in (0..=at).rev() {
            match bytes[i] {
                b')' => depth += 1,
                b'(' => {
                    depth -= 1;
                    if depth == 0 {
                        open = Some(i);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(open) = open else { continue };
        let pattern = &text[open + 1..at];
        let simple = pattern.chars().all(|c| c.is_alphanumeric() || "_, \n&".contains(c));
        // A parameter follows `(`, `,` or `|`; a `let` or `for` pattern is not a parameter.
        let before = text[..open].trim_end();
        let parameter = before.ends_with('(') || before.ends_with(',') || before.ends_with('|');
        if simple && parameter && pattern.split(',').filter(|p| !p.trim().is_empty()).count() > 2 {
            let line = text[..open].matches('\n').count() + 1;
            let rel = file.strip_prefix(e2e::repo()).unwrap_or(file).display().to_string();
            found.push(format!("{rel}:{line}: ({})", pattern.split_whitespace().collect::<Vec<_>>().join(" ")));
        }
    }
    found
}

#[test]
fn no_function_takes_a_tuple_of_more_than_two_values() {
    let mut wide = Vec::new();
    for (_, dir) in members() {
        for file in rust_files(&dir) {
            wide.extend(wide_tuple_parameters(&file));
        }
    }
    assert!(
        wide.is_empty(),
        "parameters packed in tuples of three or more (name the type they hide):\n{}",
        wide.join("\n")
    );
}
