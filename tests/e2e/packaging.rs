//! Packaging: what ships beside the binary, checked without Docker, Helm or a cluster.
//!
//! - The build's system packages are listed once (`scripts/build-packages.txt`) and installed from
//!   that list by both `scripts/setup-build.sh` (the README's commands, CI) and the Dockerfile's
//!   build stage, so that a fresh machine and the image build from the same list.
//! - Both Dockerfiles pass hadolint, and say what docs/deployment.md promises (non-root, `/config`,
//!   JSON logs, OCI labels, the Avro converter, the Connect plugin directory); the Connect
//!   entrypoint writes the worker properties the docs describe.
//! - Both Helm charts are rendered and linted by Helm's own library (helm-python-sdk, through
//!   `tests/harness/helm_render.py`), and every manifest is read back.
//! - `deploy/compose.yaml` is read for its structure, and the example configs pass `cdc validate`.
//!
//! The tools come from `scripts/test-env.sh up` (`CDC_TEST_HADOLINT`, `CDC_TEST_HELM_PYTHONPATH`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cdc_tests::build::{cdc_binary, repo_root};
use serde_json::{Value, json};

const CDC_CHART: &str = "helm/cdc";
const PLATFORM_CHART: &str = "helm/cdc-platform";
/// A realistic Kafka-mode values file of the pipeline chart, against the platform chart's
/// release `platform`.
const KAFKA_VALUES: &str = "helm/cdc/ci/kafka-values.yaml";
const RUN_ARGS: [&str; 4] = ["run", "/config/pipeline.yaml", "--platform-config", "/config/platform.yaml"];

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

// ---------------------------------------------------------------------------------------------
// Tools

const TOOLS_HINT: &str = "run `scripts/test-env.sh up` (it installs the packaging tools), then `eval \"$(scripts/test-env.sh env)\"`";

/// The path in `variable`, which must exist.
fn tool(variable: &str) -> PathBuf {
    let path = std::env::var_os(variable).unwrap_or_else(|| panic!("{variable} is not set: {TOOLS_HINT}"));
    let path = PathBuf::from(path);
    assert!(path.exists(), "{variable}={} does not exist: {TOOLS_HINT}", path.display());
    path
}

/// Runs `tests/harness/helm_render.py` with `args` and `stdin`; its JSON answer.
fn helm_tool(args: &[&str], stdin: &str) -> Value {
    let mut child = Command::new("python3")
        .arg(repo_root().join("tests/harness/helm_render.py"))
        .args(args)
        .env("PYTHONPATH", tool("CDC_TEST_HELM_PYTHONPATH"))
        .current_dir(repo_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    // The helper reads all of its input before it writes anything.
    child.stdin.take().expect("piped").write_all(stdin.as_bytes()).expect("helper reads its input");
    let output = child.wait_with_output().expect("python3 runs");
    assert!(
        output.status.success(),
        "helm_render.py {args:?} failed ({TOOLS_HINT}):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| panic!("helm_render.py {args:?}: {error}"))
}

/// The documents of a YAML text.
fn yaml_documents(text: &str) -> Vec<Value> {
    match helm_tool(&["yaml", "-"], text) {
        Value::Array(documents) => documents,
        other => panic!("not a list of documents: {other}"),
    }
}

fn yaml(text: &str) -> Value {
    yaml_documents(text).into_iter().next().unwrap_or_else(|| panic!("no YAML document in:\n{text}"))
}

// ---------------------------------------------------------------------------------------------
// Dockerfiles

#[test]
fn both_dockerfiles_pass_hadolint_ignoring_only_unpinned_apt_versions() {
    let hadolint = tool("CDC_TEST_HADOLINT");
    // A configuration of our own, so that no user or CI configuration relaxes the rules.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hadolint.yaml");
    std::fs::write(&config, "ignored: []\n").unwrap();
    for dockerfile in ["Dockerfile", "Dockerfile.connect"] {
        let mut command = Command::new(&hadolint);
        command.arg("--config").arg(&config).args(["--format", "json", "--failure-threshold", "style"]);
        for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("HADOLINT_")) {
            command.env_remove(name);
        }
        let output = command.arg(repo_root().join(dockerfile)).output().expect("hadolint runs");
        let findings = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && findings.trim() == "[]",
            "hadolint {dockerfile}: {findings}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        // Apt versions follow the pinned base image (see the Dockerfile): the one rule the
        // project waives, line by line.
        for line in read(dockerfile).lines().filter(|line| line.contains("hadolint ignore=")) {
            assert_eq!(line.trim(), "# hadolint ignore=DL3008", "{dockerfile} waives more than DL3008");
        }
    }
}

/// The instructions of stage `name` of a Dockerfile, as (INSTRUCTION, arguments), continuation
/// lines joined and comments dropped.
fn stage(dockerfile: &str, name: &str) -> Vec<(String, String)> {
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(continued) => current.push_str(continued),
            None => {
                current.push_str(line);
                if !current.trim().is_empty() {
                    logical.push(std::mem::take(&mut current));
                }
                current.clear();
            }
        }
    }
    let instructions = logical.iter().map(|line| {
        let (instruction, arguments) = line.trim().split_once(char::is_whitespace).unwrap_or((line, ""));
        (instruction.to_uppercase(), arguments.trim().to_owned())
    });
    let mut in_stage = false;
    let mut found = Vec::new();
    for (instruction, arguments) in instructions {
        if instruction == "FROM" {
            in_stage = arguments.ends_with(&format!(" AS {name}"));
        } else if in_stage {
            found.push((instruction, arguments));
        }
    }
    assert!(!found.is_empty(), "no stage `{name}`");
    found
}

fn arguments_of<'a>(stage: &'a [(String, String)], instruction: &str) -> Vec<&'a str> {
    stage.iter().filter(|(found, _)| found == instruction).map(|(_, arguments)| arguments.as_str()).collect()
}

/// `key = "value"` of the `[workspace.package]` table of the root Cargo.toml.
fn workspace_package(key: &str) -> String {
    let manifest = read("Cargo.toml");
    let table = manifest.split("[workspace.package]").nth(1).expect("[workspace.package]");
    let line = table.lines().find(|line| line.starts_with(&format!("{key} = "))).expect(key);
    line.split('"').nth(1).expect("a quoted value").to_owned()
}

#[test]
fn the_cdc_image_runs_unprivileged_from_slash_config_with_json_logs_and_labels() {
    let dockerfile = read("Dockerfile");
    let runtime = stage(&dockerfile, "runtime");
    assert_eq!(arguments_of(&runtime, "USER"), ["10001:10001"], "the image must not run as root");
    assert_eq!(arguments_of(&runtime, "ENTRYPOINT"), [r#"["cdc"]"#]);
    let cmd: Vec<String> = serde_json::from_str(arguments_of(&runtime, "CMD")[0]).expect("exec-form CMD");
    assert_eq!(cmd, RUN_ARGS);
    let env = arguments_of(&runtime, "ENV").join(" ");
    assert!(
        env.split_whitespace().any(|word| word == "CDC_LOG_FORMAT=json"),
        "no JSON logs by default: {env}"
    );
    let runs = arguments_of(&runtime, "RUN");
    let apt = runs.iter().find(|run| run.contains("apt-get install")).expect("an apt-get install");
    for package in ["ca-certificates", "libssl3"] {
        assert!(apt.split_whitespace().any(|word| word == package), "{package} is not installed: {apt}");
    }
    assert!(runs.iter().any(|run| run.contains("install -d") && run.contains(" /config")), "no /config");

    let labels = arguments_of(&runtime, "LABEL").join(" ");
    for key in ["title", "description", "version", "revision", "source", "licenses"] {
        assert!(
            labels.contains(&format!("org.opencontainers.image.{key}=")),
            "no OCI label `{key}`: {labels}"
        );
    }
    let license = workspace_package("license");
    assert!(labels.contains(&format!("org.opencontainers.image.licenses=\"{license}\"")), "{labels}");
    assert!(labels.contains("org.opencontainers.image.version=\"${VERSION}\""), "{labels}");
    let version = workspace_package("version");
    assert!(arguments_of(&runtime, "ARG").contains(&format!("VERSION={version}").as_str()), "ARG VERSION");
    let chart = yaml(&read("helm/cdc/Chart.yaml"));
    assert_eq!(chart["appVersion"], json!(version), "the chart's appVersion is not the image's version");

    // One config directory everywhere: the image, the chart.
    let mut sources =
        vec![("Dockerfile".to_owned(), dockerfile), ("values.yaml".to_owned(), read("helm/cdc/values.yaml"))];
    sources.extend(chart_templates(CDC_CHART));
    for (path, text) in sources {
        assert!(!text.contains("/etc/cdc"), "{path} still names /etc/cdc");
    }
}

fn chart_templates(chart: &str) -> Vec<(String, String)> {
    let dir = repo_root().join(chart).join("templates");
    let mut templates: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            (path.display().to_string(), std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    templates.sort();
    templates
}

#[test]
fn the_connect_image_has_the_avro_converter_by_default_and_a_plugin_directory() {
    let dockerfile = read("Dockerfile.connect");
    let jars = stage(&dockerfile, "jars");
    assert!(arguments_of(&jars, "ARG").contains(&"WITH_AVRO=true"), "WITH_AVRO must default to true");
    let avro =
        arguments_of(&jars, "RUN").into_iter().find(|run| run.contains("kafka-connect-avro-converter"));
    let avro = avro.expect("a step that adds the AvroConverter");
    assert!(avro.starts_with(r#"if [ "${WITH_AVRO}" = "true" ]"#), "WITH_AVRO=false must leave it out");
    assert!(
        avro.contains("cdc-avro-converter-manifest.jar"),
        "the converter needs its ServiceLoader manifest"
    );

    let runtime = stage(&dockerfile, "runtime");
    assert_eq!(arguments_of(&runtime, "USER"), ["10001:10001"]);
    let runs = arguments_of(&runtime, "RUN");
    assert!(runs.iter().any(|run| run.contains("install -d") && run.contains("/opt/connect/plugins")));
    let labels = arguments_of(&runtime, "LABEL").join(" ");
    assert!(labels.contains("org.opencontainers.image.title=\"cdc-connect\""), "{labels}");
    assert!(
        dockerfile.contains("COPY docker/connect/entrypoint.sh"),
        "the entrypoint is not the documented one"
    );
}

/// The worker properties docker/connect/entrypoint.sh writes with `env`, read from a stand-in
/// `java` that prints the file it was given.
fn connect_worker_properties(env: &[(&str, &str)]) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let java = dir.path().join("java");
    std::fs::write(&java, "#!/bin/sh\nfor last in \"$@\"; do :; done\ncat \"$last\"\n").unwrap();
    let mut command = Command::new("sh");
    command
        .arg(repo_root().join("docker/connect/entrypoint.sh"))
        .env_clear()
        .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
        .env("CONNECT_WORKER_PROPERTIES", dir.path().join("worker.properties"))
        .env("REST_ADVERTISED_HOST_NAME", "connect-0")
        .envs(env.iter().copied());
    let chmod = Command::new("chmod").arg("+x").arg(&java).status().unwrap();
    assert!(chmod.success());
    let output = command.output().expect("sh runs");
    assert!(output.status.success(), "entrypoint: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

/// The last value of `key` (later lines win in a properties file).
fn property<'a>(properties: &'a [(String, String)], key: &str) -> &'a str {
    let found = properties.iter().rev().find(|(found, _)| found == key);
    found.map(|(_, value)| value.as_str()).unwrap_or_else(|| panic!("no {key} in {properties:?}"))
}

#[test]
fn the_connect_entrypoint_replicates_internal_topics_and_loads_plugins_from_the_plugin_directory() {
    const FACTORS: [&str; 3] = [
        "config.storage.replication.factor",
        "offset.storage.replication.factor",
        "status.storage.replication.factor",
    ];
    let defaults = connect_worker_properties(&[("BOOTSTRAP_SERVERS", "kafka:9092")]);
    for key in FACTORS {
        assert_eq!(property(&defaults, key), "3", "production default of {key}");
    }
    assert_eq!(property(&defaults, "plugin.path"), "/opt/connect/plugins");
    assert_eq!(property(&defaults, "plugin.discovery"), "service_load");
    assert_eq!(property(&defaults, "bootstrap.servers"), "kafka:9092");

    let single_broker = connect_worker_properties(&[
        ("BOOTSTRAP_SERVERS", "kafka:9092"),
        ("STORAGE_REPLICATION_FACTOR", "1"),
        ("OFFSET_STORAGE_REPLICATION_FACTOR", "2"),
        ("CONNECT_VALUE_CONVERTER_SCHEMA_REGISTRY_URL", "http://schema-registry:8081"),
    ]);
    assert_eq!(property(&single_broker, FACTORS[0]), "1");
    assert_eq!(property(&single_broker, FACTORS[1]), "2", "one topic's own factor wins");
    assert_eq!(property(&single_broker, FACTORS[2]), "1");
    assert_eq!(
        property(&single_broker, "value.converter.schema.registry.url"),
        "http://schema-registry:8081"
    );
}

// ---------------------------------------------------------------------------------------------
// Helm

/// A rendered chart: its objects and its notes.
struct Rendered {
    objects: Vec<Value>,
    notes: String,
}

impl Rendered {
    fn all(&self, kind: &str) -> Vec<&Value> {
        self.objects.iter().filter(|object| object["kind"] == kind).collect()
    }

    fn get(&self, kind: &str, name: &str) -> Option<&Value> {
        self.all(kind).into_iter().find(|object| object["metadata"]["name"] == name)
    }

    fn one(&self, kind: &str, name: &str) -> &Value {
        self.get(kind, name).unwrap_or_else(|| {
            let names: Vec<String> =
                self.objects.iter().map(|o| format!("{}/{}", o["kind"], o["metadata"]["name"])).collect();
            panic!("no {kind} {name} among {names:?}")
        })
    }
}

/// Renders `chart` as `helm template <release> -f <files> --set-json <values>` would, or Helm's
/// error (a failed template or values the schema refuses).
fn try_render(chart: &str, files: &[&str], values: &Value, release: &str) -> Result<Rendered, String> {
    let mut args = vec!["render", chart, "--name", release, "--namespace", "data"];
    for file in files {
        args.extend(["-f", file]);
    }
    let answer = helm_tool(&args, &values.to_string());
    if answer["ok"] != true {
        return Err(answer["error"].as_str().unwrap_or_default().to_owned());
    }
    let objects = answer["manifests"].as_array().expect("manifests");
    let objects = objects.iter().map(|manifest| manifest["object"].clone()).collect();
    Ok(Rendered { objects, notes: answer["notes"].as_str().unwrap_or_default().to_owned() })
}

fn render(chart: &str, files: &[&str], values: &Value, release: &str) -> Rendered {
    try_render(chart, files, values, release)
        .unwrap_or_else(|error| panic!("{chart} does not render: {error}"))
}

fn render_error(chart: &str, values: &Value) -> String {
    match try_render(chart, &[], values, "shop") {
        Ok(_) => panic!("{chart} renders with {values}"),
        Err(error) => error,
    }
}

/// The smallest values the pipeline chart takes, with `overrides` merged over them.
fn cdc_values(overrides: Value) -> Value {
    let mut values = json!({
        "pipeline": {
            "pipeline_id": "orders",
            "source": {"source_type": "postgres", "host": "pg", "database": "shop", "password": "${PG_PASSWORD}",
                       "tables": ["public.orders"]},
            "sinks": [{"sink_id": "hook", "sink_type": "webhook", "webhook": {"url": "http://hook:8080/"}}],
        },
        "platform": {"kafka": {"bootstrap_servers": "kafka:9092", "group_id": "cdc-orders"}},
    });
    merge(&mut values, overrides);
    values
}

fn merge(base: &mut Value, overrides: Value) {
    match (base, overrides) {
        (Value::Object(base), Value::Object(overrides)) => {
            for (key, value) in overrides {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (base, overrides) => *base = overrides,
    }
}

fn container(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]["containers"][0]
}

fn env_value<'a>(container: &'a Value, name: &str) -> Option<&'a str> {
    let env = container["env"].as_array()?;
    env.iter().find(|variable| variable["name"] == name).and_then(|variable| variable["value"].as_str())
}

fn annotation<'a>(deployment: &'a Value, key: &str) -> Option<&'a str> {
    deployment["spec"]["template"]["metadata"]["annotations"][key].as_str()
}

/// platform.yaml as the ConfigMap holds it.
fn platform_yaml(rendered: &Rendered, name: &str) -> Value {
    yaml(rendered.one("ConfigMap", name)["data"]["platform.yaml"].as_str().expect("platform.yaml"))
}

/// Every Service selects the pods of a workload of the chart, on a port one of its containers
/// names.
fn assert_services_select_pods(rendered: &Rendered) {
    let workloads: Vec<&Value> =
        rendered.objects.iter().filter(|o| o["kind"] == "Deployment" || o["kind"] == "StatefulSet").collect();
    for service in rendered.all("Service") {
        let selector = service["spec"]["selector"].as_object().expect("a selector");
        let pods = workloads.iter().find(|workload| {
            let labels = &workload["spec"]["template"]["metadata"]["labels"];
            selector.iter().all(|(key, value)| &labels[key] == value)
        });
        let pods = pods.unwrap_or_else(|| panic!("Service {} selects no pods", service["metadata"]["name"]));
        let ports = &pods["spec"]["template"]["spec"]["containers"][0]["ports"];
        for port in service["spec"]["ports"].as_array().unwrap() {
            let target = if port["targetPort"].is_null() { &port["port"] } else { &port["targetPort"] };
            let served = ports
                .as_array()
                .unwrap()
                .iter()
                .any(|p| &p["name"] == target || &p["containerPort"] == target);
            assert!(
                served,
                "Service {} targets {target}, which no container port is",
                service["metadata"]["name"]
            );
        }
        let matches = &pods["spec"]["selector"]["matchLabels"];
        assert!(
            matches
                .as_object()
                .unwrap()
                .iter()
                .all(|(key, value)| &pods["spec"]["template"]["metadata"]["labels"][key] == value)
        );
    }
}

#[test]
fn the_pipeline_chart_runs_cdc_from_slash_config_with_probes_and_a_drain_that_fits_the_grace_period() {
    let rendered = render(CDC_CHART, &[KAFKA_VALUES], &json!({}), "shop");
    let deployment = rendered.one("Deployment", "shop-cdc");
    let pod = &deployment["spec"]["template"]["spec"];
    let cdc = container(deployment);
    assert_eq!(cdc["args"], json!(RUN_ARGS));
    assert_eq!(cdc["image"], "registry.example.com/cdc:0.1.0");
    let mount =
        cdc["volumeMounts"].as_array().unwrap().iter().find(|mount| mount["name"] == "config").unwrap();
    assert_eq!((&mount["mountPath"], &mount["readOnly"]), (&json!("/config"), &json!(true)));
    let volume = pod["volumes"].as_array().unwrap().iter().find(|volume| volume["name"] == "config").unwrap();
    assert_eq!(volume["configMap"]["name"], "shop-cdc");
    let tls = cdc["volumeMounts"].as_array().unwrap().iter().find(|mount| mount["name"] == "kafka-ca");
    assert_eq!(tls.expect("the extra mount")["mountPath"], "/etc/kafka-ca");
    assert_eq!(env_value(cdc, "CDC_LOG_FORMAT"), Some("json"));
    assert_eq!(cdc["envFrom"][0]["secretRef"]["name"], "shop-cdc-env");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(deployment["spec"]["replicas"], 3);

    // The probes reach the health server on the port platform.yaml gives it, which the chart
    // keeps enabled.
    let platform = platform_yaml(&rendered, "shop-cdc");
    assert_eq!(platform["health_enabled"], true);
    assert_eq!(platform["health_port"], 8080);
    assert_eq!(cdc["ports"][0], json!({"name": "http", "containerPort": 8080, "protocol": "TCP"}));
    for (probe, path) in
        [("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")]
    {
        assert_eq!(cdc[probe]["httpGet"], json!({"path": path, "port": "http"}), "{probe}");
    }
    // cdc's own deadline, then its watchdog (5 s at most), all inside the grace period.
    let timeout = platform["shutdown_timeout_seconds"].as_f64().expect("shutdown_timeout_seconds");
    assert_eq!(timeout, 45.0, "shutdownTimeoutSeconds is not what platform.yaml says");
    let grace = pod["terminationGracePeriodSeconds"].as_f64().expect("terminationGracePeriodSeconds");
    assert!(grace > timeout + 5.0, "grace period {grace} s does not cover a {timeout} s drain plus 5 s");

    assert_eq!(rendered.one("Service", "shop-cdc")["spec"]["ports"][0]["port"], 8080);
    assert_services_select_pods(&rendered);
    let secret = rendered.one("Secret", "shop-cdc-env");
    assert_eq!(secret["data"]["PG_PASSWORD"], "cGctc2VjcmV0", "base64 of the value");
    assert!(!rendered.objects.iter().any(|o| o.to_string().contains("/etc/cdc")));
    assert!(rendered.notes.contains("/config/pipeline.yaml"), "{}", rendered.notes);
}

#[test]
fn health_enabled_is_forced_on_whatever_platform_says() {
    let as_map = cdc_values(json!({"platform": {"health_enabled": false}}));
    let rendered = render(CDC_CHART, &[], &as_map, "shop");
    assert_eq!(platform_yaml(&rendered, "shop-cdc")["health_enabled"], true);

    let text = "# tuned by hand\nkafka:\n  bootstrap_servers: kafka:9092\nhealth_enabled: false\n";
    let rendered = render(CDC_CHART, &[], &cdc_values(json!({"platform": text})), "shop");
    let written = rendered.one("ConfigMap", "shop-cdc")["data"]["platform.yaml"].as_str().unwrap().to_owned();
    assert!(written.starts_with("# tuned by hand\n"), "a string is kept verbatim: {written}");
    let platform = yaml(&written);
    assert_eq!(platform["health_enabled"], true, "{written}");
    assert_eq!((&platform["health_port"], &platform["shutdown_timeout_seconds"]), (&json!(8080), &json!(30)));

    let error = render_error(CDC_CHART, &cdc_values(json!({"platform": {"health_port": 9000}})));
    assert!(error.contains("set healthPort instead"), "{error}");
    let error = render_error(CDC_CHART, &cdc_values(json!({"platform": "shutdown_timeout_seconds: 10\n"})));
    assert!(error.contains("set shutdownTimeoutSeconds instead"), "{error}");
}

#[test]
fn a_config_or_secret_change_rolls_the_pods_and_an_existing_secret_takes_a_rollout_token() {
    let checksums = |values: &Value| {
        let rendered = render(CDC_CHART, &[], values, "shop");
        let deployment = rendered.one("Deployment", "shop-cdc");
        let keys = ["checksum/config", "checksum/secret", "cdc/rollout-token"];
        keys.map(|key| annotation(deployment, key).map(str::to_owned))
    };
    let base = cdc_values(json!({"secretEnv": {"PG_PASSWORD": "one"}}));
    let [config, secret, token] = checksums(&base);
    assert!(config.is_some() && secret.is_some() && token.is_none());
    assert_eq!(checksums(&base), [config.clone(), secret.clone(), None], "a render is deterministic");

    let more_tables = cdc_values(json!({"secretEnv": {"PG_PASSWORD": "one"},
        "pipeline": {"source": {"tables": ["public.orders", "public.customers"]}}}));
    let [changed, same_secret, _] = checksums(&more_tables);
    assert_ne!(changed, config, "a pipeline change must roll the pods");
    assert_eq!(same_secret, secret);
    let [changed, _, _] =
        checksums(&cdc_values(json!({"secretEnv": {"PG_PASSWORD": "one"}, "shutdownTimeoutSeconds": 40})));
    assert_ne!(changed, config, "platform.yaml changed with shutdownTimeoutSeconds");
    let [same_config, changed, _] = checksums(&cdc_values(json!({"secretEnv": {"PG_PASSWORD": "two"}})));
    assert_eq!(same_config, config);
    assert_ne!(changed, secret, "a secretEnv change must roll the pods");

    let existing = cdc_values(json!({"existingSecret": "shop-credentials", "rolloutToken": "2026-12-01"}));
    let rendered = render(CDC_CHART, &[], &existing, "shop");
    assert!(rendered.all("Secret").is_empty());
    let deployment = rendered.one("Deployment", "shop-cdc");
    assert_eq!(annotation(deployment, "checksum/secret"), None);
    assert_eq!(annotation(deployment, "cdc/rollout-token"), Some("2026-12-01"));
    assert_eq!(container(deployment)["envFrom"], json!([{"secretRef": {"name": "shop-credentials"}}]));
}

#[test]
fn the_disruption_budget_and_the_service_monitor_follow_their_values() {
    let rendered = render(CDC_CHART, &[], &cdc_values(json!({})), "shop");
    let pdb = rendered.one("PodDisruptionBudget", "shop-cdc");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    let deployment = rendered.one("Deployment", "shop-cdc");
    assert_eq!(pdb["spec"]["selector"], deployment["spec"]["selector"]);
    assert!(rendered.all("ServiceMonitor").is_empty(), "the ServiceMonitor is off by default");
    assert_eq!(annotation(deployment, "prometheus.io/scrape"), Some("true"));

    let monitored =
        cdc_values(json!({"metrics": {"serviceMonitor": {"enabled": true, "labels": {"release": "prom"}}},
        "podDisruptionBudget": {"minAvailable": 2}}));
    let rendered = render(CDC_CHART, &[], &monitored, "shop");
    let monitor = rendered.one("ServiceMonitor", "shop-cdc");
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prom");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "http");
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    let service_labels = &rendered.one("Service", "shop-cdc")["metadata"]["labels"];
    for (key, value) in monitor["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(&service_labels[key], value, "the ServiceMonitor does not select the Service");
    }
    let deployment = rendered.one("Deployment", "shop-cdc");
    assert_eq!(annotation(deployment, "prometheus.io/scrape"), None, "scraped twice");
    let pdb = rendered.one("PodDisruptionBudget", "shop-cdc");
    assert_eq!((&pdb["spec"]["minAvailable"], &pdb["spec"]["maxUnavailable"]), (&json!(2), &Value::Null));

    let rendered =
        render(CDC_CHART, &[], &cdc_values(json!({"podDisruptionBudget": {"enabled": false}})), "shop");
    assert!(rendered.all("PodDisruptionBudget").is_empty());

    // Embedded mode: one pod at a time on the slot. Helm merges the default's rollingUpdate into
    // `strategy`, which a Recreate Deployment must not have.
    let embedded =
        cdc_values(json!({"strategy": {"type": "Recreate"}, "platform": {"transport_mode": "embedded"}}));
    let rendered = render(CDC_CHART, &[], &embedded, "shop");
    assert_eq!(rendered.one("Deployment", "shop-cdc")["spec"]["strategy"], json!({"type": "Recreate"}));
}

#[test]
fn the_values_schema_rejects_misspelt_keys_and_bad_values() {
    let cases = [
        (json!({"replicaCuont": 3}), "replicaCuont"),
        // Gone in 0.2.0: derived from shutdownTimeoutSeconds now.
        (json!({"terminationGracePeriodSeconds": 60}), "terminationGracePeriodSeconds"),
        (json!({"metrics": {"serviceMonitor": {"enabeld": true}}}), "enabeld"),
        (json!({"shutdownGraceMarginSeconds": 5}), "shutdownGraceMarginSeconds"),
        (json!({"logFormat": "xml"}), "logFormat"),
        (json!({"replicaCount": "3"}), "replicaCount"),
    ];
    for (overrides, named) in cases {
        let error = render_error(CDC_CHART, &cdc_values(overrides.clone()));
        assert!(error.contains("schema") && error.contains(named), "{overrides}: {error}");
    }
    let error = render_error(PLATFORM_CHART, &json!({"kafak": {"replicas": 3}}));
    assert!(error.contains("kafak"), "{error}");
}

#[test]
fn both_charts_pass_helm_lint() {
    let lints = [
        (CDC_CHART, vec![KAFKA_VALUES], json!({})),
        (
            CDC_CHART,
            vec![],
            cdc_values(json!({"replicaCount": 1, "strategy": {"type": "Recreate"},
            "platform": {"transport_mode": "embedded"}})),
        ),
        (PLATFORM_CHART, vec![], json!({})),
        (
            PLATFORM_CHART,
            vec![],
            json!({"kafka": {"replicas": 3}, "connect": {"replicas": 2, "converter": "json"}}),
        ),
    ];
    for (chart, files, values) in lints {
        let mut args = vec!["lint", chart];
        for file in &files {
            args.extend(["-f", file]);
        }
        let report = helm_tool(&args, &values.to_string());
        assert_eq!(report["total_charts_linted"], 1, "{report}");
        // Severity 1 is information (`icon is recommended`); 2 warning, 3 error.
        let problems: Vec<&Value> = report["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|message| message["severity"].as_i64().unwrap_or(3) >= 2)
            .collect();
        assert!(
            problems.is_empty() && report["errors"] == json!([]),
            "helm lint {chart} {files:?}: {report}"
        );
    }
    // The linter does read the values and the schema.
    let report = helm_tool(&["lint", CDC_CHART], &json!({"replicaCuont": 3}).to_string());
    assert!(report["errors"].to_string().contains("replicaCuont"), "{report}");
}

#[test]
fn the_rendered_pipeline_config_passes_cdc_validate() {
    // cdc validate opens the TLS files platform.yaml names: a real one stands in for the mount.
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.crt");
    std::fs::write(&ca, "not checked beyond its presence\n").unwrap();
    let values = json!({"platform": {"kafka": {"ssl_ca_location": ca}}});
    let rendered = render(CDC_CHART, &[KAFKA_VALUES], &values, "shop");
    let data = &rendered.one("ConfigMap", "shop-cdc")["data"];
    for file in ["pipeline.yaml", "platform.yaml"] {
        std::fs::write(dir.path().join(file), data[file].as_str().unwrap()).unwrap();
    }
    let secrets = [("PG_PASSWORD", "p"), ("REPLICA_PASSWORD", "r"), ("KAFKA_PASSWORD", "k")];
    let summary =
        cdc_validate(&dir.path().join("pipeline.yaml"), &dir.path().join("platform.yaml"), &secrets);
    assert!(summary.contains("health: port 8080"), "{summary}");
    assert!(summary.contains("(avro values)"), "{summary}");
}

fn cdc_validate(pipeline: &Path, platform: &Path, env: &[(&str, &str)]) -> String {
    let output = Command::new(cdc_binary())
        .arg("validate")
        .arg(pipeline)
        .arg("--platform-config")
        .arg(platform)
        .envs(env.iter().copied())
        .output()
        .expect("cdc runs");
    let text =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "cdc validate {}:\n{text}", pipeline.display());
    text
}

#[test]
fn the_platform_chart_runs_kafka_a_registry_and_connect_with_the_avro_converter() {
    let rendered = render(PLATFORM_CHART, &[], &json!({}), "platform");
    assert_services_select_pods(&rendered);

    let kafka = rendered.one("StatefulSet", "platform-kafka");
    let broker = container(kafka);
    assert!(broker["image"].as_str().unwrap().starts_with("apache/kafka:"));
    assert_eq!(kafka["spec"]["replicas"], 1, "a single node by default");
    assert_eq!(env_value(broker, "KAFKA_PROCESS_ROLES"), Some("broker,controller"), "KRaft, combined");
    let voters = "0@platform-kafka-0.platform-kafka-headless.data.svc:9093";
    assert_eq!(env_value(broker, "KAFKA_CONTROLLER_QUORUM_VOTERS"), Some(voters));
    assert_eq!(env_value(broker, "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"), Some("1"));
    assert_eq!(kafka["spec"]["template"]["spec"]["enableServiceLinks"], false);
    assert_eq!(rendered.one("Service", "platform-kafka-headless")["spec"]["publishNotReadyAddresses"], true);
    assert_eq!(rendered.one("Service", "platform-kafka")["spec"]["ports"][0]["port"], 9092);

    let registry = container(rendered.one("Deployment", "platform-schema-registry"));
    assert!(registry["image"].as_str().unwrap().starts_with("confluentinc/cp-schema-registry:"));
    let store = env_value(registry, "SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS");
    assert_eq!(store, Some("PLAINTEXT://platform-kafka:9092"));
    assert_eq!(rendered.one("Service", "platform-schema-registry")["spec"]["ports"][0]["port"], 8081);

    let connect_deployment = rendered.one("Deployment", "platform-connect");
    let connect = container(connect_deployment);
    let chart = yaml(&read("helm/cdc-platform/Chart.yaml"));
    assert_eq!(connect["image"], json!(format!("cdc-connect:{}", chart["appVersion"].as_str().unwrap())));
    assert_eq!(env_value(connect, "BOOTSTRAP_SERVERS"), Some("platform-kafka:9092"));
    assert_eq!(env_value(connect, "VALUE_CONVERTER"), Some("io.confluent.connect.avro.AvroConverter"));
    assert_eq!(env_value(connect, "KEY_CONVERTER"), Some("io.confluent.connect.avro.AvroConverter"));
    let registry_url = Some("http://platform-schema-registry:8081");
    assert_eq!(env_value(connect, "CONNECT_VALUE_CONVERTER_SCHEMA_REGISTRY_URL"), registry_url);
    assert_eq!(env_value(connect, "CONNECT_KEY_CONVERTER_SCHEMA_REGISTRY_URL"), registry_url);
    assert_eq!(env_value(connect, "STORAGE_REPLICATION_FACTOR"), Some("1"), "one broker: factor 1");
    assert_eq!(connect["readinessProbe"]["httpGet"], json!({"path": "/health", "port": "http"}));
    assert_eq!(connect_deployment["spec"]["template"]["spec"]["enableServiceLinks"], false);
    assert_eq!(connect["securityContext"]["readOnlyRootFilesystem"], true);
    let connect_service = rendered.one("Service", "platform-connect");
    assert_eq!(connect_service["spec"]["ports"][0]["port"], 8083);

    // The pipeline chart's example talks to exactly these addresses.
    let example = yaml(&read(KAFKA_VALUES));
    let kafka_settings = &example["platform"]["kafka"];
    assert_eq!(kafka_settings["bootstrap_servers"], "platform-kafka:9092");
    assert_eq!(kafka_settings["schema_registry_url"], json!(registry_url));
    assert_eq!(example["platform"]["connector"]["connect_url"], "http://platform-connect:8083");
    for address in
        ["platform-kafka:9092", "http://platform-schema-registry:8081", "http://platform-connect:8083"]
    {
        assert!(rendered.notes.contains(address), "the notes do not tell {address}:\n{}", rendered.notes);
    }

    // Three nodes: a quorum, replication 3 for every internal topic, one eviction at a time.
    let rendered = render(PLATFORM_CHART, &[], &json!({"kafka": {"replicas": 3}}), "platform");
    let broker = container(rendered.one("StatefulSet", "platform-kafka"));
    let voters = env_value(broker, "KAFKA_CONTROLLER_QUORUM_VOTERS").unwrap();
    assert_eq!(voters.split(',').count(), 3, "{voters}");
    assert_eq!(env_value(broker, "KAFKA_MIN_INSYNC_REPLICAS"), Some("2"));
    let connect = container(rendered.one("Deployment", "platform-connect"));
    assert_eq!(env_value(connect, "STORAGE_REPLICATION_FACTOR"), Some("3"));
    let registry = container(rendered.one("Deployment", "platform-schema-registry"));
    assert_eq!(env_value(registry, "SCHEMA_REGISTRY_KAFKASTORE_TOPIC_REPLICATION_FACTOR"), Some("3"));
    assert!(rendered.get("PodDisruptionBudget", "platform-kafka").is_some());

    let json_converter = render(PLATFORM_CHART, &[], &json!({"connect": {"converter": "json"}}), "platform");
    let connect = container(json_converter.one("Deployment", "platform-connect"));
    assert_eq!(env_value(connect, "VALUE_CONVERTER"), None, "the image's JsonConverter default");
    let error = render_error(PLATFORM_CHART, &json!({"kafka": {"enabled": false}}));
    assert!(error.contains("externalKafka.bootstrapServers"), "{error}");
}

// ---------------------------------------------------------------------------------------------
// Docker Compose

/// A compose volume's (source, target), short or long syntax.
fn compose_volume(volume: &Value) -> (String, String) {
    match volume {
        Value::String(short) => {
            let mut parts = short.split(':');
            (parts.next().unwrap().to_owned(), parts.next().unwrap_or_default().to_owned())
        }
        long => (long["source"].as_str().unwrap().to_owned(), long["target"].as_str().unwrap().to_owned()),
    }
}

fn seconds(duration: &str) -> f64 {
    let (number, unit) = duration.split_at(duration.trim_end_matches(char::is_alphabetic).len());
    let number: f64 = number.parse().unwrap_or_else(|_| panic!("a duration: {duration}"));
    match unit {
        "s" => number,
        "m" => number * 60.0,
        _ => panic!("unit of {duration}"),
    }
}

#[test]
fn the_compose_file_runs_the_platform_and_a_pipeline_from_its_config_directory() {
    let deploy = repo_root().join("deploy");
    let compose = yaml(&read("deploy/compose.yaml"));
    let services = compose["services"].as_object().expect("services");
    for name in ["postgres", "kafka", "schema-registry", "connect", "cdc"] {
        assert!(services.contains_key(name), "no service {name}");
    }
    for (name, service) in services {
        assert!(service["image"].is_string() || service["build"].is_object(), "{name} has no image");
        // Each dependency waits for the other's health check.
        for (dependency, how) in service["depends_on"].as_object().into_iter().flatten() {
            assert_eq!(how["condition"], "service_healthy", "{name} → {dependency}");
            let test =
                &services.get(dependency).unwrap_or_else(|| panic!("{name} → {dependency}"))["healthcheck"];
            assert!(test["test"].is_array(), "{dependency} has no health check");
        }
    }
    let mut cdc_dependencies: Vec<&String> =
        services["cdc"]["depends_on"].as_object().unwrap().keys().collect();
    cdc_dependencies.sort();
    assert_eq!(cdc_dependencies, ["connect", "kafka", "postgres", "schema-registry"]);

    // The images come from the repository's Dockerfiles.
    for (name, dockerfile) in [("cdc", "Dockerfile"), ("connect", "Dockerfile.connect")] {
        let build = &services[name]["build"];
        let context = deploy.join(build["context"].as_str().unwrap()).canonicalize().unwrap();
        assert_eq!(context, repo_root().canonicalize().unwrap(), "{name} builds from the repository");
        assert_eq!(build["dockerfile"], dockerfile);
    }

    // The pipeline's config directory is mounted where the image reads it.
    let volumes: Vec<(String, String)> =
        services["cdc"]["volumes"].as_array().unwrap().iter().map(compose_volume).collect();
    let (source, _) = volumes.iter().find(|(_, target)| target == "/config").expect("a /config mount");
    let config = deploy.join(source);
    for file in ["pipeline.yaml", "platform.yaml"] {
        assert!(config.join(file).is_file(), "{} has no {file}", config.display());
    }
    assert_eq!(services["cdc"]["command"], Value::Null, "the image's own command reads /config");

    let postgres = services["postgres"]["command"].as_array().unwrap();
    assert!(postgres.contains(&json!("wal_level=logical")), "{postgres:?}");
    let init = services["postgres"]["volumes"].as_array().unwrap().iter().map(compose_volume);
    let (init, _) =
        init.into_iter().find(|(_, target)| target.starts_with("/docker-entrypoint-initdb.d/")).unwrap();
    let init = std::fs::read_to_string(deploy.join(init)).unwrap();

    // The pipeline's settings name the services of this file.
    let pipeline = yaml(&std::fs::read_to_string(config.join("pipeline.yaml")).unwrap());
    let platform = yaml(&std::fs::read_to_string(config.join("platform.yaml")).unwrap());
    assert_eq!(pipeline["source"]["host"], "postgres");
    for table in pipeline["source"]["tables"].as_array().unwrap() {
        let table = table.as_str().unwrap().trim_start_matches("public.");
        assert!(init.contains(&format!("CREATE TABLE {table} ")), "the init script creates no {table}");
    }
    let kafka_env = &services["kafka"]["environment"];
    let bootstrap = platform["kafka"]["bootstrap_servers"].as_str().unwrap();
    assert!(kafka_env["KAFKA_ADVERTISED_LISTENERS"].as_str().unwrap().contains(&format!("//{bootstrap}")));
    let connect_env = &services["connect"]["environment"];
    assert_eq!(connect_env["BOOTSTRAP_SERVERS"], bootstrap);
    assert_eq!(platform["connector"]["connect_url"], "http://connect:8083");
    assert_eq!(platform["kafka"]["schema_registry_url"], "http://schema-registry:8081");
    assert_eq!(connect_env["CONNECT_VALUE_CONVERTER_SCHEMA_REGISTRY_URL"], "http://schema-registry:8081");
    assert_eq!(connect_env["VALUE_CONVERTER"], "io.confluent.connect.avro.AvroConverter");
    assert_eq!(connect_env["STORAGE_REPLICATION_FACTOR"], "1", "one broker: the image's 3 cannot be met");
    assert_eq!(platform["health_port"], 8080);
    assert!(services["cdc"]["ports"].as_array().unwrap().contains(&json!("8080:8080")));

    let timeout = platform["shutdown_timeout_seconds"].as_f64().unwrap();
    let grace = seconds(services["cdc"]["stop_grace_period"].as_str().expect("stop_grace_period"));
    assert!(grace > timeout + 5.0, "stop_grace_period {grace} s does not cover a {timeout} s drain plus 5 s");

    let summary =
        cdc_validate(&config.join("pipeline.yaml"), &config.join("platform.yaml"), &[("PG_PASSWORD", "x")]);
    assert!(summary.contains("transport: kafka kafka:9092 (avro values)"), "{summary}");
}

// ---------------------------------------------------------------------------------------------
// Documentation

#[test]
fn the_deployment_guide_is_linked_and_names_the_real_kafka_security_fields() {
    let readme = read("README.md");
    assert!(readme.contains("(docs/deployment.md)"), "README.md does not link docs/deployment.md");
    let guide = read("docs/deployment.md");
    let raw_config = read("host/src/config/raw.rs");
    let fields = [
        "security_protocol",
        "auth_mechanism",
        "sasl_username",
        "sasl_password",
        "ssl_ca_location",
        "ssl_certificate_location",
        "ssl_key_location",
    ];
    for field in fields {
        assert!(raw_config.contains(&format!("pub {field}:")), "platform.yaml has no kafka.{field} any more");
        assert!(guide.contains(&format!("`{field}`")), "docs/deployment.md does not document {field}");
    }
    for mechanism in ["sasl_plain", "sasl_scram256", "sasl_scram512", "sasl_iam", "sasl_oauthbearer"] {
        assert!(guide.contains(mechanism), "docs/deployment.md does not mention {mechanism}");
    }
    for section in ["## Build", "## Run", "## Configure", "## Secure", "## Scale", "## Upgrade"] {
        assert!(guide.contains(section), "docs/deployment.md has no `{section}`");
    }
}
