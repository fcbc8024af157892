//! `cdc plugin new NAME --kind transform|sink [--dir PATH]`: renders the SDK's template
//! (`sdk/template/metadata.toml`: `content/<kind>/` with `{{name}}` and `{{crate_name}}`
//! replaced) into `PATH/NAME`, copies the SDK (with the shared `cdc-event` crate) into its `sdk/`
//! and the WIT package this host binds to into its `wit/`, as they sit in the repository,
//! and writes a Cargo.lock made from the SDK's, so that the first build resolves nothing: it
//! needs no network when the crates are in the local cargo cache. Everything comes from what
//! this binary carries; the repository is not needed.

use std::fs;
use std::path::{Path, PathBuf};

use super::embedded::FILES;
use super::{Failure, Kind, NewArgs, Outcome};

/// Where the template's content sits among the embedded files.
const TEMPLATE_CONTENT: &str = "sdk/template/content/";
/// The SDK's own files (its `event/` crate included): copied into the project's `sdk/`, except
/// the template.
const SDK: &str = "sdk/";
const SDK_TEMPLATE: &str = "sdk/template/";
/// The host's WIT package: the project's `wit/`, beside `sdk/` as in the repository, so the
/// plugin binds to what this host runs.
const WIT: &str = "wit/";
const SDK_LOCK: &str = "sdk/Cargo.lock";

/// Names a plugin cannot take: Rust keywords and the crates every build has (the crate name
/// would not compile or would shadow them).
const RESERVED: &[&str] = &[
    "abstract",
    "alloc",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "core",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "proc_macro",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "std",
    "struct",
    "super",
    "test",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
    "union",
    "sdk",
];

pub(super) fn run(args: &NewArgs) -> Outcome {
    let sdk_lock = embedded_text(SDK_LOCK)?;
    check_name(&args.name, &lock_packages(&sdk_lock)).map_err(Failure::Usage)?;
    let crate_name = args.name.replace('-', "_");
    let files = render(&args.name, &crate_name, args.kind, &sdk_lock)?;

    // `./NAME` reads as `NAME` in what is printed.
    let project =
        if args.dir == Path::new(".") { PathBuf::from(&args.name) } else { args.dir.join(&args.name) };
    prepare_directory(&project)?;
    for (relative, bytes) in &files {
        let path = project.join(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|error| {
                Failure::Failed(format!("cannot create the directory {}: {error}", parent.display()))
            })?;
        }
        fs::write(&path, bytes)
            .map_err(|error| Failure::Failed(format!("cannot write {}: {error}", path.display())))?;
    }

    let kind = args.kind.name();
    let wasm = format!("target/wasm32-wasip2/release/{crate_name}.wasm");
    let logic = match args.kind {
        Kind::Transform => "the plugin: `transform` returns one outcome per event",
        Kind::Sink => "the plugin: `write` takes batches, `flush` makes them durable",
    };
    println!("Created the {kind} plugin `{}` in {} ({} files)", args.name, project.display(), files.len());
    println!();
    println!("  src/lib.rs         {logic}");
    println!("  events.jsonl       recorded change events, one per line in the wire form");
    println!("  tests/recorded.rs  native tests over them (`cargo test`)");
    println!("  sdk/               cdc-sdk and its cdc-event crate; sdk/README.md is the author guide");
    println!("  wit/               the cdc:plugin WIT package this host runs");
    println!();
    println!("Next:");
    println!("  cd {}", project.display());
    println!("  cargo test                 # native, against events.jsonl");
    println!("  cdc plugin build           # -> {wasm}");
    println!("  cdc plugin test {wasm} --events events.jsonl");
    println!("  cdc plugin inspect {wasm}");
    Ok(())
}

/// Checks `name` against the template's pattern (`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`), Rust's
/// keywords and the packages the project's lock already holds.
fn check_name(name: &str, locked: &[&str]) -> Result<(), String> {
    let pattern = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.split('-').all(|part| {
            !part.is_empty() && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        });
    if !pattern || name.len() > 64 {
        return Err(format!(
            "`{name}` is not a plugin name: use kebab-case ASCII, a lowercase letter then lowercase \
             letters, digits and single dashes, at most 64 characters (e.g. `mask-pii`)"
        ));
    }
    let crate_name = name.replace('-', "_");
    if RESERVED.contains(&crate_name.as_str()) {
        return Err(format!(
            "`{name}` is not a plugin name: `{crate_name}` is reserved in Rust or taken here"
        ));
    }
    if let Some(taken) =
        locked.iter().find(|package| **package == name || package.replace('-', "_") == crate_name)
    {
        return Err(format!("`{name}` is not a plugin name: the SDK depends on the package `{taken}`"));
    }
    Ok(())
}

/// The project's files: the template's content rendered, the SDK, the WIT and Cargo.lock.
fn render(
    name: &str,
    crate_name: &str,
    kind: Kind,
    sdk_lock: &str,
) -> Result<Vec<(String, Vec<u8>)>, Failure> {
    let content = format!("{TEMPLATE_CONTENT}{}/", kind.name());
    let mut files = Vec::new();
    for (path, bytes) in FILES {
        if let Some(relative) = path.strip_prefix(content.as_str()) {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| Failure::Failed(format!("the embedded template file {path} is not UTF-8")))?;
            let text = text.replace("{{name}}", name).replace("{{crate_name}}", crate_name);
            files.push((relative.to_owned(), text.into_bytes()));
        } else if (path.starts_with(SDK) && !path.starts_with(SDK_TEMPLATE)) || path.starts_with(WIT) {
            files.push(((*path).to_owned(), bytes.to_vec()));
        }
    }
    let manifest = files.iter().find(|(path, _)| path == "Cargo.toml").ok_or_else(|| {
        Failure::Failed(format!("this cdc binary carries no template for a {} (no Cargo.toml)", kind.name()))
    })?;
    let version = String::from_utf8_lossy(&manifest.1)
        .lines()
        .find_map(|line| Some(line.strip_prefix("version = \"")?.strip_suffix('"')?.to_owned()))
        .ok_or_else(|| Failure::Failed("the template's Cargo.toml has no version".into()))?;
    files.push(("Cargo.lock".into(), lock_file(sdk_lock, name, &version).into_bytes()));
    Ok(files)
}

/// Creates `project`, or accepts it empty; anything else is left alone.
fn prepare_directory(project: &Path) -> Outcome {
    match fs::read_dir(project) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(Failure::Failed(format!(
                    "{} exists and is not empty: choose another NAME or --dir",
                    project.display()
                )));
            }
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => fs::create_dir_all(project)
            .map_err(|error| Failure::Failed(format!("cannot create {}: {error}", project.display()))),
        Err(error) => {
            Err(Failure::Failed(format!("{} is not a usable directory: {error}", project.display())))
        }
    }
}

/// The SDK's Cargo.lock with the project's package added in cargo's order (packages sorted by
/// name), so that cargo uses it as it is, `--locked` included: the project's only dependency is
/// the SDK, whose dependencies the SDK's lock already pins.
fn lock_file(sdk_lock: &str, name: &str, version: &str) -> String {
    let mut parts = sdk_lock.split("[[package]]\n");
    let header = parts.next().unwrap_or_default().trim_end();
    let mut packages: Vec<String> = parts.map(|package| package.trim_end().to_owned()).collect();
    packages.push(format!("name = \"{name}\"\nversion = \"{version}\"\ndependencies = [\n \"cdc-sdk\",\n]"));
    // Stable: versions of one name keep the order the SDK's lock gave them.
    packages.sort_by(|a, b| package_name(a).cmp(package_name(b)));
    let mut lock = format!("{header}\n");
    for package in packages {
        lock.push_str("\n[[package]]\n");
        lock.push_str(&package);
        lock.push('\n');
    }
    lock
}

/// The names of the packages in a Cargo.lock.
fn lock_packages(lock: &str) -> Vec<&str> {
    lock.split("[[package]]\n").skip(1).map(package_name).collect()
}

fn package_name(package: &str) -> &str {
    package.lines().find_map(|line| line.strip_prefix("name = \"")?.strip_suffix('"')).unwrap_or_default()
}

fn embedded_text(path: &str) -> Result<String, Failure> {
    FILES
        .iter()
        .find(|(embedded, _)| *embedded == path)
        .map(|(_, bytes)| String::from_utf8_lossy(bytes).into_owned())
        .ok_or_else(|| Failure::Failed(format!("this cdc binary does not carry {path}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_is_the_sdks_plus_the_project_in_order() {
        let sdk_lock = embedded_text(SDK_LOCK).unwrap();
        let lock = lock_file(&sdk_lock, "demo", "0.1.0");
        let project =
            "\n[[package]]\nname = \"demo\"\nversion = \"0.1.0\"\ndependencies = [\n \"cdc-sdk\",\n]\n";
        assert_eq!(lock.replacen(project, "", 1), sdk_lock);
        let names = lock_packages(&lock);
        assert!(names.is_sorted(), "{names:?}");
        assert!(names.contains(&"demo") && names.contains(&"cdc-sdk"));
    }

    #[test]
    fn names_follow_the_template_pattern() {
        let locked = ["cdc-sdk", "serde", "wit-bindgen"];
        for good in ["demo", "mask-pii", "a1-b2", "x"] {
            assert_eq!(check_name(good, &locked), Ok(()), "{good}");
        }
        for bad in
            ["", "Demo", "1x", "-x", "x-", "a--b", "a_b", "a b", "fn", "std", "serde", "cdc-sdk", "cdc_sdk"]
        {
            assert!(check_name(bad, &locked).is_err(), "{bad}");
        }
    }

    #[test]
    fn both_kinds_render_with_the_sdk_and_without_placeholders() {
        let sdk_lock = embedded_text(SDK_LOCK).unwrap();
        for kind in [Kind::Transform, Kind::Sink] {
            let files = render("mask-pii", "mask_pii", kind, &sdk_lock).unwrap();
            let paths: Vec<&str> = files.iter().map(|(path, _)| path.as_str()).collect();
            for expected in [
                "Cargo.toml",
                "Cargo.lock",
                "src/lib.rs",
                "tests/recorded.rs",
                "events.jsonl",
                "README.md",
                ".gitignore",
                "sdk/Cargo.toml",
                "sdk/Cargo.lock",
                "sdk/src/lib.rs",
                "sdk/event/src/lib.rs",
                "wit/types.wit",
                "sdk/README.md",
            ] {
                assert!(paths.contains(&expected), "{kind:?} lacks {expected}: {paths:?}");
            }
            assert!(paths.iter().all(|path| !path.starts_with("sdk/template/") && !path.contains("target/")));
            // The SDK is copied as it is (its own tests name the placeholders); the content is rendered.
            for (path, bytes) in files.iter().filter(|(path, _)| !path.starts_with(SDK)) {
                let text = String::from_utf8_lossy(bytes);
                assert!(!text.contains("{{name}}") && !text.contains("{{crate_name}}"), "{path}");
            }
            let manifest = &files.iter().find(|(path, _)| path == "Cargo.toml").unwrap().1;
            assert!(String::from_utf8_lossy(manifest).contains("name = \"mask-pii\""));
        }
    }

    #[test]
    fn a_non_empty_directory_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("keep.txt"), "mine").unwrap();
        assert!(matches!(prepare_directory(dir.path()), Err(Failure::Failed(_))));
        let empty = dir.path().join("empty");
        fs::create_dir(&empty).unwrap();
        assert!(prepare_directory(&empty).is_ok());
        assert!(prepare_directory(&dir.path().join("new/deeper")).is_ok());
        assert_eq!(fs::read_to_string(dir.path().join("keep.txt")).unwrap(), "mine");
    }
}
