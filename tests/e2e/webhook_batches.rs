//! The webhook sink with `batch_size`, a signing secret and gzip, in a whole pipeline
//! (librdkafka's mock cluster, a real HTTP receiver, a DLQ topic): every request is gzipped and
//! signed as Standard Webhooks prescribe (over the JSON before compression), and the receiver
//! checks it; a batch answered 500 comes again under the same id;
//! a batch answered 422 is split until the one event the endpoint refuses goes to the DLQ,
//! while every other event arrives, in order; with `max_in_flight`, requests for different keys
//! are in flight together while each key stays in order.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use cdc_host::config::WebhookCompression;
use cdc_host::pipeline::Outcome;
use cdc_host::sinks::webhook::WebhookSettings;
use cdc_tests::kafka::{committed_offsets, produce, read_topic};
use cdc_tests::pipeline::WebhookPipeline;
use cdc_tests::receiver::{Delivery, WebhookReceiver, eventually};
use hmac::{Hmac, Mac};
use rdkafka::mocking::{MockCluster, MockCoordinator};
use serde_json::{Value as Json, json};
use sha2::Sha256;

use crate::in_process::envelope;

const TOPIC: &str = "batch.public.orders";
const DLQ_TOPIC: &str = "batch.public.orders.dlq";
const GROUP: &str = "cdc-webhook-batches";
/// `whsec_` and the base64 of the key the receiver verifies with.
const SECRET: &str = "whsec_dGVzdC1zaWduaW5nLWtleS0wMTIzNDU2Nzg5";
const KEY: &[u8] = b"test-signing-key-0123456789";
/// The event the endpoint answers 500 once (in whichever batch carries it).
const FLAKY_ID: i64 = 4;
/// The event the endpoint always refuses (422).
const REFUSED_ID: i64 = 6;

/// The key ids a request carries.
fn ids_in(body: &Json) -> Vec<i64> {
    body["events"]
        .as_array()
        .expect("a batched body")
        .iter()
        .map(|event| event["key"]["id"].as_i64().unwrap())
        .collect()
}

/// Checks a request's signature as a receiver does: HMAC-SHA256 of `id.timestamp.body`.
fn signature_verifies(delivery: &Delivery) -> bool {
    let (Some(id), Some(timestamp), Some(signature)) =
        (&delivery.webhook_id, &delivery.webhook_timestamp, &delivery.webhook_signature)
    else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(&delivery.raw_body);
    let expected = format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()));
    signature.split(' ').any(|candidate| candidate == expected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_signed_requests_retry_under_their_id_and_split_down_to_the_refused_event() {
    assert_eq!(BASE64.decode(SECRET.trim_start_matches("whsec_")).unwrap(), KEY);
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic(TOPIC, 1, 1).unwrap();
    cluster.create_topic(DLQ_TOPIC, 1, 1).unwrap();
    cluster.coordinator(MockCoordinator::Group(GROUP.into()), 1).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    let mut last = 0;
    for id in 1..=8 {
        let (key, value) = envelope(id);
        last = produce(&bootstrap, TOPIC, 0, Some(&key), &value).await;
    }

    let receiver = WebhookReceiver::start().await;
    // The events of the request answered 500, once.
    let failed_once: Arc<Mutex<Option<Vec<i64>>>> = Arc::default();
    let flaky = failed_once.clone();
    receiver.respond_with(move |body| {
        let ids = ids_in(body);
        if ids.contains(&REFUSED_ID) {
            return 422;
        }
        let mut flaky = flaky.lock().unwrap();
        if ids.contains(&FLAKY_ID) && flaky.is_none() {
            *flaky = Some(ids);
            return 500;
        }
        200
    });
    let settings = WebhookSettings {
        batch_size: 3,
        signing_secrets: vec![SECRET.into()],
        compression: WebhookCompression::Gzip,
        ..receiver.settings()
    };
    let pipeline = WebhookPipeline::spawn(&bootstrap, GROUP, TOPIC, &settings, Duration::from_secs(5));

    let done = eventually(Duration::from_secs(60), || async {
        committed_offsets(&bootstrap, GROUP, TOPIC).get(&0) == Some(&(last + 1))
    })
    .await;
    let deliveries = receiver.deliveries();
    assert!(done, "the commit did not reach the end; deliveries: {deliveries:?}");

    // Every request is signed, under the id it also carries as its idempotency key.
    for delivery in &deliveries {
        assert!(signature_verifies(delivery), "a signature does not verify: {delivery:?}");
        assert_eq!(delivery.webhook_id, delivery.idempotency_key);
        assert_eq!(delivery.content_encoding.as_deref(), Some("gzip"));
        assert!(ids_in(&delivery.body).len() <= 3, "a request carries at most batch_size events");
    }
    // Everything but the refused event arrives, in order (a retried request may repeat some).
    let mut seen = Vec::new();
    for id in deliveries.iter().flat_map(|delivery| ids_in(&delivery.body)) {
        if seen.last() != Some(&id) && !seen.contains(&id) {
            seen.push(id);
        }
    }
    assert_eq!(seen, vec![1, 2, 3, 4, 5, 7, 8]);
    // The request answered 500 came again with the same events, so under the same id, and
    // was accepted.
    let failed = failed_once.lock().unwrap().clone().expect("the endpoint never answered 500");
    let retried: Vec<&Delivery> =
        deliveries.iter().filter(|delivery| ids_in(&delivery.body) == failed).collect();
    assert_eq!(retried.len(), 1, "the events answered 500 were not sent again as they were: {failed:?}");
    // Event n is at offset n - 1; a request's id names its events' ids.
    let event_id = |n: i64| format!("{TOPIC}/0/{}", n - 1);
    let expected = match failed[..] {
        [only] => event_id(only),
        _ => format!("{}..{}", event_id(failed[0]), event_id(failed[failed.len() - 1])),
    };
    assert_eq!(retried[0].webhook_id.as_deref(), Some(expected.as_str()));
    assert!(receiver.attempts() > deliveries.len(), "the 500 and the 422s were attempts too");

    // The refused event, alone, is in the DLQ.
    let dead = read_topic(&bootstrap, DLQ_TOPIC, 1, Duration::from_secs(10));
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].key.as_deref(), Some(json!({"id": REFUSED_ID}).to_string().as_bytes()));

    assert_eq!(pipeline.stop().await, Outcome::Stopped);
}

/// Bodies a slow receiver took, and the most requests it held at once.
#[derive(Default)]
struct SlowReceiver {
    bodies: Mutex<Vec<Json>>,
    in_flight: std::sync::atomic::AtomicUsize,
    most_in_flight: std::sync::atomic::AtomicUsize,
}

async fn take_slowly(
    axum::extract::State(receiver): axum::extract::State<Arc<SlowReceiver>>,
    body: axum::body::Bytes,
) -> &'static str {
    use std::sync::atomic::Ordering::SeqCst;
    let now = receiver.in_flight.fetch_add(1, SeqCst) + 1;
    receiver.most_in_flight.fetch_max(now, SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    receiver.bodies.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
    receiver.in_flight.fetch_sub(1, SeqCst);
    "ok"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_for_different_keys_fly_together_and_each_key_stays_in_order() {
    use cdc_host::sinks::SinkFactory;
    use cdc_host::sinks::webhook::WebhookFactory;

    let receiver = Arc::new(SlowReceiver::default());
    let app =
        axum::Router::new().route("/hook", axum::routing::post(take_slowly)).with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let settings = WebhookSettings {
        url,
        method: "POST".into(),
        headers: Vec::new(),
        timeout: Duration::from_secs(10),
        auth_token: None,
        ca_file: None,
        status_classes: Default::default(),
        batch_size: 5,
        batch_timeout: Duration::ZERO,
        max_in_flight: 3,
        signing_secrets: Vec::new(),
        compression: WebhookCompression::None,
    };
    let mut sink = WebhookFactory::new("hook", &settings).unwrap().build();
    // Six keys, ten changes each, interleaved.
    let events: Vec<_> =
        (0..60).map(|offset| cdc_host::testing::event(TOPIC, 0, offset, offset % 6)).collect();
    sink.write(&events).await.expect("every request is delivered");
    sink.flush().await.expect("nothing is buffered");

    let bodies = receiver.bodies.lock().unwrap().clone();
    let mut offsets_by_key: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
    for body in &bodies {
        let carried = body["events"].as_array().expect("batched bodies");
        assert!(carried.len() <= 5, "at most batch_size events per request");
        for event in carried {
            let key = event["key"]["id"].as_i64().unwrap();
            offsets_by_key.entry(key).or_default().push(event["metadata"]["offset"].as_i64().unwrap());
        }
    }
    assert_eq!(offsets_by_key.len(), 6);
    for (key, offsets) in &offsets_by_key {
        let expected: Vec<i64> = (0..60).filter(|offset| offset % 6 == *key).collect();
        assert_eq!(offsets, &expected, "key {key}: every change once, in order");
    }
    let most = receiver.most_in_flight.load(std::sync::atomic::Ordering::SeqCst);
    assert!((2..=3).contains(&most), "{most} requests in flight at most");
}
