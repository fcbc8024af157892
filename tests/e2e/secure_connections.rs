//! Secure connections: every client the host makes works over TLS with a private CA. Kafka is
//! reached through mutual TLS only (stunnel demanding a client certificate, tansu's proxy
//! advertising the TLS port), Kafka Connect and the Schema Registry over HTTPS (the registry
//! with basic auth), the webhook over HTTPS trusted through the system's trust store
//! (`SSL_CERT_FILE`); a zstd-compressed batch reads like any other. A client without the right
//! certificate or trust fails, and says why.

use std::time::Duration;

use cdc_tests::kafka::{committed_offsets, produce, produce_compressed, read_topic};
use cdc_tests::receiver::{WebhookReceiver, eventually};
use cdc_tests::scenario::{NOTE_TABLE, PipelineParts, Scenario, webhook_sink};
use cdc_tests::schema_registry::TestSchemaRegistry;
use cdc_tests::tls::{TlsFiles, TlsKafka, TlsTerminator};

use crate::delivery::key_id;

const REGISTRY_USER: &str = "cdc-registry";
const REGISTRY_PASSWORD: &str = "registry-s3cret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_runs_over_mutual_tls_https_and_an_authenticated_registry() {
    let scenario = Scenario::new(NOTE_TABLE).await;
    let files = TlsFiles::from_env();
    let kafka = TlsKafka::start(&scenario.env.kafka, true);
    let connect = TlsTerminator::in_front_of(&scenario.env.connect_url);
    let registry = TestSchemaRegistry::start_with_basic_auth(REGISTRY_USER, REGISTRY_PASSWORD).await.unwrap();
    let registry_tls = TlsTerminator::start(registry.port(), false);
    let receiver = WebhookReceiver::start().await;
    let receiver_tls = TlsTerminator::start(receiver.port(), false);

    let parts = PipelineParts {
        sinks: webhook_sink("hook", &format!("{}/hook", receiver_tls.https_url())),
        bootstrap_servers: Some(kafka.bootstrap()),
        kafka: format!(
            "  security_protocol: ssl\n  ssl_ca_location: {ca}\n  ssl_certificate_location: {cert}\n  ssl_key_location: {key}\n  value_converter: avro\n  schema_registry_url: {registry}\n  schema_registry_username: {REGISTRY_USER}\n  schema_registry_password: {REGISTRY_PASSWORD}\n  schema_registry_ca_file: {ca}\n",
            ca = files.path("ca.crt"),
            cert = files.path("client.crt"),
            key = files.path("client.key"),
            registry = registry_tls.https_url(),
        ),
        // Connect's workers reach the registry on its plain port, with the same credentials.
        connector: format!(
            "  connect_url: {}\n  ca_file: {}\n  schema_registry_url: {}\n",
            connect.https_url(),
            files.path("ca.crt"),
            registry.url()
        ),
        platform: "dlq:\n  max_retries: 1\n".into(),
        ..PipelineParts::default()
    };
    // The webhook's CA is trusted only through the system trust store the host reads.
    let (mut cdc, _) = scenario.start(&parts, &[("SSL_CERT_FILE", &files.path("ca.crt"))]);
    scenario.wait_streaming(&cdc).await;
    scenario.insert_rows(1..=3).await;
    let deliveries = receiver.wait_for(3, Duration::from_secs(150)).await;
    assert_eq!(deliveries.iter().map(key_id).collect::<Vec<_>>(), [1, 2, 3], "{}", cdc.log());

    // A record that is not Avro goes to the DLQ through the TLS producer.
    let topic = scenario.topic();
    let poison_offset = produce(&scenario.env.kafka, &topic, 0, None, b"not avro").await;
    scenario.insert_rows(4..=4).await;
    assert_eq!(receiver.wait_for(4, Duration::from_secs(60)).await.len(), 4, "{}", cdc.log());
    let end = poison_offset + 2;
    let committed = eventually(Duration::from_secs(30), || async {
        committed_offsets(&scenario.env.kafka, &scenario.names.group, &topic).get(&0) == Some(&end)
    })
    .await;
    assert!(committed, "the commit over TLS did not reach {end}\n{}", cdc.log());

    // A batch compressed with zstd (as a producer configured for it writes) reads the same:
    // row 1's record written again is delivered again.
    let original = read_topic(&scenario.env.kafka, &topic, 1, Duration::from_secs(10)).remove(0);
    let (key, value) = (original.key.as_deref(), original.value.as_deref().expect("a value"));
    let again = produce_compressed(&scenario.env.kafka, &topic, 0, key, value, "zstd").await;
    let deliveries = receiver.wait_for(5, Duration::from_secs(60)).await;
    let last = deliveries.last().expect("a delivery");
    assert_eq!((key_id(last), last.body["metadata"]["offset"].as_i64()), (1, Some(again)), "{}", cdc.log());

    // The operator commands use the same secured clients.
    let (ok, list) = scenario.cli(&parts, &["dlq", "list"], &[]);
    assert!(
        ok && list.lines().any(|line| line.starts_with("1 ") && line.ends_with(&scenario.dlq_topic())),
        "{list}"
    );
    let (ok, health) = scenario.cli(&parts, &["health"], &[]);
    assert!(ok, "{health}");
    for component in ["broker", "registry", "connect", "connector"] {
        assert!(health.lines().any(|line| line.starts_with(component) && line.contains("up")), "{health}");
    }
    // Every registry request carried the credentials: the host's and Connect's converters'.
    assert_eq!(registry.unauthorized_count(), 0, "requests without credentials reached the registry");
    assert!(registry.request_count() > 0);
    assert!(cdc.terminate(Duration::from_secs(60)).success(), "{}", cdc.log());
    scenario.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_without_the_right_certificate_or_trust_fail_and_say_why() {
    let scenario = Scenario::new(NOTE_TABLE).await;
    let files = TlsFiles::from_env();
    let kafka = TlsKafka::start(&scenario.env.kafka, true);
    let connect = TlsTerminator::in_front_of(&scenario.env.connect_url);
    // No client certificate for a broker that demands one, no CA for Connect's private one.
    let parts = PipelineParts {
        bootstrap_servers: Some(kafka.bootstrap()),
        kafka: format!("  security_protocol: ssl\n  ssl_ca_location: {}\n", files.path("ca.crt")),
        connector: format!(
            "  connect_url: {}\n  timeout_seconds: 5\n  retry_max_attempts: 1\n",
            connect.https_url()
        ),
        ..PipelineParts::default()
    };
    let (ok, health) = scenario.cli(&parts, &["health"], &[]);
    assert!(!ok, "{health}");
    let line = |name: &str| health.lines().find(|line| line.starts_with(name)).unwrap_or_default().to_owned();
    assert!(line("broker").contains("DOWN"), "{health}");
    assert!(line("connect").contains("DOWN") && line("connect").contains("certificate"), "{health}");
    // A wrong setting is refused before anything is tried.
    let wrong = PipelineParts { kafka: "  security_protocol: sasl_ssl\n".into(), ..parts.clone() };
    let (ok, said) = scenario.cli(&wrong, &["validate"], &[]);
    assert!(!ok && said.contains("kafka.auth_mechanism"), "{said}");
    scenario.cleanup().await;
}
