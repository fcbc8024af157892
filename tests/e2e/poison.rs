//! Poison among good records: undecodable messages and a record the sink refuses go to the DLQ
//! with their original bytes and Kafka Connect's error headers; the good ones are delivered in
//! order; the committed offset moves past all of them.

use std::time::Duration;

use cdc_tests::kafka::{committed_offsets, produce, read_topic};
use cdc_tests::receiver::{WebhookReceiver, eventually};
use cdc_tests::scenario::{NOTE_TABLE, PipelineParts, Scenario, webhook_sink};

use crate::delivery::key_id;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_goes_to_the_dlq_with_headers_and_good_records_are_delivered() {
    let scenario = Scenario::new(NOTE_TABLE).await;
    let receiver = WebhookReceiver::start().await;
    // The endpoint refuses the row with id 3 as unprocessable: a poison record for this sink.
    receiver.respond_with(|body| if body["key"]["id"] == 3 { 422 } else { 200 });
    let parts = PipelineParts {
        sinks: webhook_sink("hook", &receiver.url()),
        platform: "dlq:\n  max_retries: 1\n".into(),
        ..PipelineParts::default()
    };
    let (mut cdc, _) = scenario.start(&parts, &[]);
    scenario.wait_streaming(&cdc).await;
    let table = &scenario.names.table;
    let topic = scenario.topic();

    scenario.sql(&format!("INSERT INTO public.{table} VALUES (1, 'first')")).await;
    assert_eq!(receiver.wait_for(1, Duration::from_secs(120)).await.len(), 1, "{}", cdc.log());
    let garbage: &[u8] = b"{not json at all";
    let not_an_envelope: &[u8] = br#"{"op": "x", "after": {"id": 9}}"#;
    let garbage_offset = produce(&scenario.env.kafka, &topic, 0, Some(b"k1"), garbage).await;
    let envelope_offset = produce(&scenario.env.kafka, &topic, 0, None, not_an_envelope).await;
    scenario.insert_rows(2..=4).await;

    let deliveries = receiver.wait_for(3, Duration::from_secs(60)).await;
    let ids: Vec<i64> = deliveries.iter().map(key_id).collect();
    assert_eq!(ids, vec![1, 2, 4], "{}", cdc.log());

    let dead = read_topic(&scenario.env.kafka, &scenario.dlq_topic(), 3, Duration::from_secs(30));
    assert_eq!(dead.len(), 3, "dlq: {dead:#?}\n{}", cdc.log());
    let (decode_a, decode_b, refused) = (&dead[0], &dead[1], &dead[2]);
    assert_eq!(decode_a.value.as_deref(), Some(garbage));
    assert_eq!(decode_a.key.as_deref(), Some(&b"k1"[..]));
    assert_eq!(decode_b.value.as_deref(), Some(not_an_envelope));
    assert_eq!(decode_b.key, None);
    for (record, offset) in [(decode_a, garbage_offset), (decode_b, envelope_offset)] {
        assert_eq!(record.headers["__connect.errors.topic"], topic);
        assert_eq!(record.headers["__connect.errors.partition"], "0");
        assert_eq!(record.headers["__connect.errors.offset"], offset.to_string());
        assert_eq!(record.headers["dlq.sink_id"], "decode");
        assert!(!record.headers["__connect.errors.exception.message"].is_empty());
        assert!(record.headers.contains_key("dlq.timestamp_ms"));
    }
    assert!(decode_b.headers["__connect.errors.exception.message"].contains("op"), "{:?}", decode_b.headers);

    // The refused row keeps its original Debezium bytes.
    assert_eq!(refused.headers["dlq.sink_id"], "hook");
    assert_eq!(refused.headers["dlq.attempts"], "2");
    assert!(refused.headers["__connect.errors.exception.message"].contains("422"), "{:?}", refused.headers);
    let refused_offset: i64 = refused.headers["__connect.errors.offset"].parse().unwrap();
    let source = read_topic(&scenario.env.kafka, &topic, usize::MAX, Duration::from_secs(5));
    let original = source.iter().find(|record| record.offset == refused_offset).expect("the refused record");
    assert_eq!(refused.value, original.value);
    assert_eq!(refused.key, original.key);

    // Everything, poison included, is handled: the commit reaches the end of the partition.
    let end = source.iter().map(|record| record.offset).max().unwrap() + 1;
    let committed = eventually(Duration::from_secs(20), || async {
        committed_offsets(&scenario.env.kafka, &scenario.names.group, &topic).get(&0) == Some(&end)
    })
    .await;
    assert!(
        committed,
        "commit did not reach {end}: {:?}",
        committed_offsets(&scenario.env.kafka, &scenario.names.group, &topic)
    );

    // The operator's view: how many records each DLQ holds, the records with why they failed,
    // and the source topic as the pipeline decodes it; none of it moves the group's offsets.
    let (ok, list) = scenario.cli(&parts, &["dlq", "list"], &[]);
    assert!(
        ok && list.lines().any(|line| line.starts_with("3 ") && line.ends_with(&scenario.dlq_topic())),
        "{list}"
    );
    let (ok, shown) = scenario.cli(&parts, &["dlq", "show"], &["--limit", "10"]);
    assert!(ok, "{shown}");
    let shown: Vec<serde_json::Value> =
        shown.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(shown.len(), 3, "{shown:#?}");
    assert_eq!(shown[0]["value"], "{not json at all");
    assert_eq!(shown[0]["headers"]["dlq.sink_id"], "decode");
    assert_eq!(shown[2]["headers"]["dlq.sink_id"], "hook");
    let (ok, consumed) =
        scenario.cli(&parts, &["consume"], &["--from-beginning", "--limit", "100", "--wait-seconds", "3"]);
    assert!(ok, "{consumed}");
    let consumed: Vec<serde_json::Value> =
        consumed.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let decoded: Vec<&serde_json::Value> =
        consumed.iter().map(|event| &event["value"]["after"]["id"]).filter(|id| !id.is_null()).collect();
    assert_eq!(decoded, [1, 2, 3, 4], "{consumed:#?}");
    let errors: Vec<i64> = consumed
        .iter()
        .filter(|event| event.get("error").is_some())
        .map(|event| event["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(errors, [garbage_offset, envelope_offset], "{consumed:#?}");
    assert_eq!(committed_offsets(&scenario.env.kafka, &scenario.names.group, &topic).get(&0), Some(&end));
    assert!(cdc.terminate(Duration::from_secs(60)).success(), "{}", cdc.log());
    scenario.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dlq_replay_sends_records_back_in_order_and_stops_at_one_that_fails_again() {
    let scenario = Scenario::new(NOTE_TABLE).await;
    let receiver = WebhookReceiver::start().await;
    // Row 2 is refused while the endpoint is "broken"; it goes to the DLQ, the others through.
    let broken = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let refusing = broken.clone();
    receiver.respond_with(move |body| {
        if refusing.load(std::sync::atomic::Ordering::SeqCst) && body["key"]["id"] == 2 { 422 } else { 200 }
    });
    let parts = PipelineParts {
        sinks: webhook_sink("hook", &receiver.url()),
        platform: "dlq:\n  max_retries: 1\n".into(),
        ..PipelineParts::default()
    };
    let (mut cdc, _) = scenario.start(&parts, &[]);
    scenario.wait_streaming(&cdc).await;
    scenario.insert_rows(1..=3).await;
    let delivered = receiver.wait_for(2, Duration::from_secs(120)).await;
    assert_eq!(delivered.iter().map(key_id).collect::<Vec<_>>(), [1, 3], "{}", cdc.log());
    // Then a record that will never decode.
    produce(&scenario.env.kafka, &scenario.topic(), 0, None, b"{never json").await;
    let dead = read_topic(&scenario.env.kafka, &scenario.dlq_topic(), 2, Duration::from_secs(60));
    assert_eq!(dead.len(), 2, "{}", cdc.log());
    assert!(cdc.terminate(Duration::from_secs(60)).success(), "{}", cdc.log());

    // The endpoint is mended. A dry run says where the records would go and sends nothing.
    broken.store(false, std::sync::atomic::Ordering::SeqCst);
    let before = receiver.deliveries().len();
    let (ok, said) = scenario.cli(&parts, &["dlq", "replay"], &["--dry-run"]);
    assert!(!ok && said.contains("would send") && said.contains("`hook`"), "{said}");
    assert!(said.contains("still does not decode"), "{said}");
    assert_eq!(receiver.deliveries().len(), before, "a dry run delivered");

    // The replay sends row 2 back to the sink that refused it, then stops at the record that
    // still does not decode, and says so.
    let (ok, said) = scenario.cli(&parts, &["dlq", "replay"], &[]);
    assert!(!ok, "{said}");
    assert!(said.contains("replayed 1 record(s)") && said.contains("1 event(s) to `hook`"), "{said}");
    assert!(said.contains("still does not decode") && said.contains("offset 1"), "{said}");
    let replayed: Vec<_> = receiver
        .deliveries()
        .into_iter()
        .filter(|d| d.body["metadata"]["topic"].as_str() == Some(&scenario.dlq_topic()))
        .collect();
    assert_eq!(replayed.len(), 1, "{:?}", receiver.deliveries());
    assert_eq!(key_id(&replayed[0]), 2);
    assert_eq!(replayed[0].body["value"]["after"]["note"], "row 2");

    // A second replay starts where the first stopped: row 2 is not sent again.
    let (ok, said) = scenario.cli(&parts, &["dlq", "replay"], &[]);
    assert!(!ok && said.contains("replayed 0 record(s)") && said.contains("offset 1"), "{said}");
    let row_2 = receiver.deliveries().iter().filter(|delivery| key_id(delivery) == 2).count();
    assert_eq!(row_2, 1, "row 2 was sent twice: {:?}", receiver.deliveries());
    scenario.cleanup().await;
}
