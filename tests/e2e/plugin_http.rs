//! Outbound HTTP from plugins (docs/architecture.md, plugins), in-process: the example sink
//! `plugins/http-sink` POSTs each flushed batch through wasi:http. With the receiver's `127.0.0.1:<port>` in
//! `allowed_hosts` the events arrive; with nothing granted (or another host) the request never leaves the
//! host, `flush` fails as fatal naming the denied host, the receiver sees nothing, and the runtime goes on
//! serving a granted instance.

use std::time::Duration;

use cdc_host::error::{Classify, ErrorClass};
use cdc_host::event::ChangeEvent;
use cdc_host::plugin::{Capabilities, PluginError, PluginLimits, PluginRuntime, PluginSettings, SinkPlugin};
use cdc_tests::build::plugin_wasm;
use cdc_tests::receiver::WebhookReceiver;

fn event(id: i64) -> ChangeEvent {
    cdc_tests::events::insert("http", id)
}

/// The http-sink posting to `url`, granted `allowed_hosts`.
fn http_sink(runtime: &PluginRuntime, url: &str, allowed_hosts: &[&str]) -> SinkPlugin {
    let spec = PluginSettings {
        name: "http-sink".into(),
        path: plugin_wasm("http-sink"),
        sha256: None,
        config_json: serde_json::json!({ "url": url, "timeout_ms": 5000 }).to_string(),
        limits: PluginLimits {
            memory_bytes: 64 << 20,
            call_timeout: Duration::from_secs(10),
            max_output_bytes: 16 << 20,
        },
        capabilities: Capabilities {
            allowed_hosts: allowed_hosts.iter().map(|host| (*host).to_owned()).collect(),
            ..Capabilities::default()
        },
    };
    SinkPlugin::load(runtime, spec).expect("http-sink loads")
}

/// Opens an instance, writes `events` and flushes, where blocking is allowed (wasm calls are
/// synchronous and wasi:http waits on the host's runtime).
async fn deliver(plugin: &SinkPlugin, events: Vec<ChangeEvent>) -> Result<(), PluginError> {
    let plugin = plugin.clone();
    tokio::task::spawn_blocking(move || {
        let mut instance = plugin.instantiate()?;
        let refused = instance.write(&events)?;
        assert!(refused.is_empty(), "no event is refused alone: {refused:?}");
        let flushed = instance.flush("http/0/3");
        instance.close();
        flushed
    })
    .await
    .expect("the blocking task ends")
}

/// The receiver's `host:port`.
fn authority(receiver: &WebhookReceiver) -> String {
    receiver.url().trim_start_matches("http://").split('/').next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn granted_host_receives_each_flushed_batch() {
    let receiver = WebhookReceiver::start().await;
    let runtime = PluginRuntime::new().expect("the runtime starts");
    let plugin = http_sink(&runtime, &receiver.url(), &[&authority(&receiver)]);

    deliver(&plugin, (1..=3).map(event).collect()).await.expect("the flush is delivered");

    let deliveries = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(deliveries.len(), 1, "one POST per flush");
    let body = deliveries[0].body.as_array().expect("the body is a JSON array");
    let ids: Vec<_> = body.iter().map(|event| event["id"].as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(ids, ["http/0/1", "http/0/2", "http/0/3"]);
    assert_eq!(body[1]["after"]["note"], "row 2");

    // A grant by host name alone allows any port of that host.
    let by_host = http_sink(&runtime, &receiver.url(), &["127.0.0.1"]);
    deliver(&by_host, vec![event(4)]).await.expect("a host-only grant allows any port");
    assert_eq!(receiver.wait_for(2, Duration::from_secs(10)).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ungranted_host_is_denied_and_the_runtime_goes_on() {
    let receiver = WebhookReceiver::start().await;
    let runtime = PluginRuntime::new().expect("the runtime starts");
    let granted = authority(&receiver);
    let other_port = if granted.ends_with(":1") { "127.0.0.1:2" } else { "127.0.0.1:1" };

    for allowed in [&[][..], &["api.example.com"][..], &[other_port][..]] {
        let plugin = http_sink(&runtime, &receiver.url(), allowed);
        let error = deliver(&plugin, (1..=3).map(event).collect())
            .await
            .expect_err("a request to a host not granted must fail");
        assert_eq!(error.class(), ErrorClass::Fatal, "{error}");
        assert!(matches!(error, PluginError::Returned { call: "flush", .. }), "{error:?}");
        let message = error.to_string();
        assert!(
            message.contains(&granted) && message.contains("not granted"),
            "the error names the denied host ({allowed:?}): {message}"
        );
    }
    assert_eq!(receiver.attempts(), 0, "no denied request reached the receiver");

    // The same runtime still serves: a granted instance delivers.
    let plugin = http_sink(&runtime, &receiver.url(), &[&granted]);
    deliver(&plugin, vec![event(7)]).await.expect("a granted instance still delivers");
    let deliveries = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].body[0]["id"], "http/0/7");
}
