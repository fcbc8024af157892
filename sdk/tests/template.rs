//! The `cdc plugin new` template stays consistent with its metadata: every placeholder used in
//! `content/` is declared, and each kind has the files the metadata promises. (CI renders and
//! builds it; this catches the cheap mistakes first.) Skipped where `template/` is not shipped.

use std::fs;
use std::path::Path;

const FILES: [&str; 7] = [
    "Cargo.toml",
    "src/lib.rs",
    "tests/recorded.rs",
    "events.jsonl",
    "README.md",
    "rustfmt.toml",
    ".gitignore",
];

fn placeholders(text: &str) -> Vec<String> {
    text.split("{{")
        .skip(1)
        .map(|rest| rest.split_once("}}").map_or(rest, |(name, _)| name).to_owned())
        .collect()
}

#[test]
fn content_uses_only_declared_placeholders_and_has_every_file() {
    let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("template");
    if !template.is_dir() {
        eprintln!("skipped: no template/ next to this SDK copy");
        return;
    }
    let metadata = fs::read_to_string(template.join("metadata.toml")).unwrap();
    let declared: Vec<&str> =
        metadata.lines().filter_map(|line| line.strip_prefix("[parameters.")?.strip_suffix(']')).collect();
    assert_eq!(declared, ["name", "crate_name"]);
    for kind in ["transform", "sink"] {
        assert!(metadata.contains(&format!("[kinds.{kind}]")), "metadata.toml lacks [kinds.{kind}]");
        for file in FILES {
            let path = template.join("content").join(kind).join(file);
            let text =
                fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            for name in placeholders(&text) {
                assert!(
                    declared.contains(&name.as_str()),
                    "{}: undeclared placeholder {{{{{name}}}}}",
                    path.display()
                );
            }
        }
        let manifest = fs::read_to_string(template.join("content").join(kind).join("Cargo.toml")).unwrap();
        for line in
            [r#"name = "{{name}}""#, r#"cdc-sdk = { path = "sdk" }"#, r#"crate-type = ["cdylib", "rlib"]"#]
        {
            assert!(manifest.contains(line), "{kind}/Cargo.toml lacks `{line}`");
        }
    }
}

#[test]
fn recorded_events_are_in_the_exact_host_form() {
    let content = Path::new(env!("CARGO_MANIFEST_DIR")).join("template/content");
    if !content.is_dir() {
        return;
    }
    for kind in ["transform", "sink"] {
        let text = fs::read_to_string(content.join(kind).join("events.jsonl")).unwrap();
        for line in text.lines() {
            let event = cdc_sdk::Event::from_wire(line.as_bytes()).unwrap();
            assert_eq!(String::from_utf8(event.to_wire()).unwrap(), line, "{kind}/events.jsonl");
        }
    }
}
