//! The SDK carries its own copy of the WIT package (so it builds outside this repository); this
//! fails when the copy drifts from the repository's `wit/`. Skipped where `../wit` does not exist.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

fn wit_files(dir: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    for entry in fs::read_dir(dir).unwrap_or_else(|error| panic!("reading {}: {error}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_file() {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            files.insert(name, fs::read_to_string(&path).unwrap());
        }
    }
    files
}

#[test]
fn vendored_wit_matches_the_repository() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let upstream = manifest.join("../wit");
    if !upstream.is_dir() {
        eprintln!("skipped: {} does not exist (the SDK is outside the cdc repository)", upstream.display());
        return;
    }
    let vendored = wit_files(&manifest.join("wit"));
    let upstream = wit_files(&upstream);
    assert_eq!(
        vendored.keys().collect::<Vec<_>>(),
        upstream.keys().collect::<Vec<_>>(),
        "sdk/wit/ must hold the same files as wit/"
    );
    for (name, text) in &upstream {
        assert!(
            vendored[name] == *text,
            "sdk/wit/{name} differs from wit/{name}: copy it again (cp wit/*.wit sdk/wit/)"
        );
    }
}
