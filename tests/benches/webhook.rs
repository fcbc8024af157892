//! Webhook sink throughput against a local receiver: events/s through `Sink::write` + `flush`
//! as a sink lane drives it (lane batches of 1,000 events), one request per event (the seed's
//! behaviour, the baseline of the same run) and batched (`batch_size` 100 and 1,000), signed
//! as Standard Webhooks prescribe. The receiver answers 200 after reading each body whole.
//!
//! `cargo bench -p cdc-tests --bench webhook`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use cdc_host::event::ChangeEvent;
use cdc_host::sinks::SinkFactory;
use cdc_host::sinks::webhook::{WebhookFactory, WebhookSettings};

// The allocator of the `cdc` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const LANE_BATCH: usize = 1_000;
const SECRET: &str = "whsec_dGVzdC1zaWduaW5nLWtleS0wMTIzNDU2Nzg5";

/// Requests and body bytes the receiver took.
#[derive(Default)]
struct Received {
    requests: AtomicU64,
    bytes: AtomicU64,
}

async fn receive(State(received): State<Arc<Received>>, body: axum::body::Bytes) -> &'static str {
    received.requests.fetch_add(1, Ordering::Relaxed);
    received.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
    "ok"
}

fn events(count: usize) -> Vec<ChangeEvent> {
    (0..count as i64).map(|id| cdc_tests::events::insert("bench.public.orders", id)).collect()
}

fn main() {
    // Tuned as the `cdc` binary tunes it.
    cdc_host::allocator::tune();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let received = Arc::new(Received::default());
        let app = Router::new().route("/hook", post(receive)).with_state(received.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        println!(
            "{:>10} {:>8} {:>12} {:>12} {:>14}",
            "batch_size", "events", "events/s", "requests", "avg body B"
        );
        for (batch_size, count) in [(1, 5_000), (100, 100_000), (1_000, 200_000)] {
            let settings = WebhookSettings {
                url: url.clone(),
                method: "POST".into(),
                headers: Vec::new(),
                timeout: Duration::from_secs(10),
                auth_token: None,
                ca_file: None,
                status_classes: Default::default(),
                batch_size,
                batch_timeout: Duration::ZERO,
                max_in_flight: 1,
                signing_secrets: vec![SECRET.into()],
                compression: Default::default(),
            };
            let factory = WebhookFactory::new("bench", &settings).unwrap();
            let mut sink = factory.build();
            let events = events(count);
            let (requests, bytes) =
                (received.requests.load(Ordering::Relaxed), received.bytes.load(Ordering::Relaxed));
            let started = Instant::now();
            for lane_batch in events.chunks(LANE_BATCH) {
                sink.write(lane_batch).await.expect("the receiver takes everything");
                sink.flush().await.expect("nothing is buffered");
            }
            let elapsed = started.elapsed();
            let requests = received.requests.load(Ordering::Relaxed) - requests;
            let bytes = received.bytes.load(Ordering::Relaxed) - bytes;
            println!(
                "{batch_size:>10} {count:>8} {:>12.0} {requests:>12} {:>14}",
                count as f64 / elapsed.as_secs_f64(),
                bytes / requests.max(1)
            );
            sink.close().await;
        }
    });
}
