//! The build's system packages are listed once (`scripts/build-packages.txt`) and installed from
//! that list by both `scripts/setup-build.sh` (the README's commands, CI) and the Dockerfile's
//! build stage, so that a fresh machine and the image build from the same list.

use cdc_tests::build::repo_root;

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|error| panic!("{path}: {error}"))
}

fn listed_packages() -> Vec<String> {
    read("scripts/build-packages.txt")
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim().to_owned())
        .filter(|line| !line.is_empty())
        .collect()
}

#[test]
fn the_build_packages_are_listed_once_and_installed_from_the_list() {
    let packages = listed_packages();
    // rdkafka_conf.c includes <curl/curl.h> even with rdkafka's `curl` feature off.
    for needed in ["cmake", "g++", "libcurl4-openssl-dev", "zlib1g-dev"] {
        assert!(packages.iter().any(|package| package == needed), "{needed} is missing from {packages:?}");
    }
    let setup = read("scripts/setup-build.sh");
    assert!(setup.contains("scripts/build-packages.txt"), "setup-build.sh does not read the list");
    let dockerfile = read("Dockerfile");
    assert!(dockerfile.contains("COPY scripts/build-packages.txt"), "the Dockerfile does not use the list");
    for (name, text) in [("setup-build.sh", &setup), ("Dockerfile", &dockerfile)] {
        for package in &packages {
            let spelled_out = text.lines().any(|line| {
                !line.trim_start().starts_with('#')
                    && line.split_whitespace().any(|word| word == package)
                    && line.contains("apt-get install")
            });
            assert!(!spelled_out, "{name} names `{package}` in an apt-get line instead of reading the list");
        }
    }
}
