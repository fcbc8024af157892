//! The batch glue the export macros call: origins, record errors, error classes, plugin state.

use cdc_sdk::__private as glue;
use cdc_sdk::log::Level;
use cdc_sdk::prelude::*;
use cdc_sdk::testing::{self, SinkHarness};

/// Decides by the `action` column: keep, drop, many, poison, retry, fatal, bad-decimal.
struct ByAction;

impl Transform for ByAction {
    fn configure(config: Config) -> Result<Self, Error> {
        config.deny_unknown(&["greeting"])?;
        cdc_sdk::log::info(format_args!("configured: {}", config.get_or("greeting", "hi".to_owned())?));
        Ok(ByAction)
    }

    fn transform(&mut self, event: Event) -> Outcome {
        cdc_sdk::log::counter_add("seen", 1);
        let action = event.column("action").and_then(Value::as_text).unwrap_or("keep").to_owned();
        match action.as_str() {
            "drop" => Outcome::Drop,
            "many" => Outcome::Many(vec![event.clone(), event]),
            "none" => Outcome::Many(Vec::new()),
            "poison" => Outcome::Error(Error::poison("bad row")),
            "retry" => Outcome::Error(Error::retryable("lookup service down")),
            "fatal" => Outcome::Error(Error::fatal("broken invariant")),
            // Decimals are checked where they are made: a bad one is the record's error.
            "bad-decimal" => match "12,5".parse::<Decimal>() {
                Ok(price) => Outcome::Keep(event.with_after(row! {"price" => price})),
                Err(error) => Outcome::Error(Error::poison(error.to_string())),
            },
            _ => Outcome::Keep(event),
        }
    }

    fn describe() -> PluginInfo {
        PluginInfo::new().param(ConfigParam::string("greeting").default_json("\"hi\""))
    }
}

fn event(n: i64, action: &str) -> Event {
    Event::insert("public.t", row! {"id" => n, "action" => action}).with_id(format!("t/0/{n}"))
}

#[test]
fn origins_and_record_errors_follow_the_outcomes() {
    let input: Vec<Event> = ["keep", "drop", "many", "poison", "none", "bad-decimal", "keep"]
        .iter()
        .enumerate()
        .map(|(n, action)| event(n as i64, action))
        .collect();
    let output = testing::transform_batch::<ByAction>(json!({}), &input).unwrap();
    let origins: Vec<usize> = output.events.iter().map(|(origin, _)| *origin).collect();
    assert_eq!(origins, [0, 2, 2, 6]);
    assert_eq!(output.events[1].1, input[2]);
    assert_eq!(output.events[3].1, input[6]);
    let errors: Vec<(usize, ErrorClass, &str)> =
        output.errors.iter().map(|(index, error)| (*index, error.class, error.message.as_str())).collect();
    assert_eq!(
        errors,
        [(3, ErrorClass::Poison, "bad row"), (5, ErrorClass::Poison, "`12,5` is not a decimal number"),]
    );
}

#[test]
fn retryable_and_fatal_outcomes_fail_the_whole_batch() {
    let retry = testing::transform_batch::<ByAction>(json!({}), &[event(0, "keep"), event(1, "retry")]);
    assert_eq!(retry.unwrap_err(), Error::retryable("lookup service down"));
    let fatal = testing::transform_batch::<ByAction>(json!({}), &[event(0, "poison"), event(1, "fatal")]);
    assert_eq!(fatal.unwrap_err(), Error::fatal("broken invariant"));
}

#[test]
fn run_transform_gives_one_outcome_per_event() {
    let outcomes = testing::run_transform::<ByAction>(
        json!({}),
        vec![event(0, "keep"), event(1, "retry"), event(2, "bad-decimal")],
    );
    assert_eq!(outcomes[0], Outcome::Keep(event(0, "keep")));
    assert_eq!(outcomes[1], Outcome::Error(Error::retryable("lookup service down")));
    assert!(matches!(&outcomes[2], Outcome::Error(error) if error.class == ErrorClass::Poison));
}

#[test]
fn unreadable_input_records_are_poison_and_the_rest_go_on() {
    let mut batch = cdc_sdk::wire::pack(&[event(0, "keep")]).unwrap();
    batch.data.extend_from_slice(br#"{"op":"c","table":{"table":"t"},"after":{"x":{"$money":1}}}"#);
    batch.ends.push(batch.data.len() as u32);
    batch.push_with(|out| event(2, "keep").write_wire(out)).unwrap();
    let mut slot = None;
    glue::configure::<ByAction>(&mut slot, "").unwrap();
    let output = glue::transform(&mut slot, &batch.data, &batch.ends).unwrap();
    assert_eq!(output.origins, [0, 2]);
    assert_eq!(output.errors.len(), 1);
    assert_eq!(output.errors[0].0, 1);
    assert_eq!(
        output.errors[0].1,
        Error::poison("cannot read input record: field `after.x`: unknown value tag `$money`")
    );
}

#[test]
fn malformed_batches_and_missing_configure_are_fatal() {
    let mut slot = None;
    let error = glue::transform::<ByAction>(&mut slot, b"{}", &[2]).unwrap_err();
    assert_eq!(error, Error::fatal("transform called before configure"));
    glue::configure::<ByAction>(&mut slot, "null").unwrap();
    let error = glue::transform(&mut slot, b"{}", &[2, 1]).unwrap_err();
    assert_eq!(error.class, ErrorClass::Fatal);
    assert!(error.message.starts_with("malformed batch: record 1 ends at 1, after 2"), "{error}");
    let empty = glue::transform(&mut slot, b"", &[]).unwrap();
    assert!(empty.records.is_empty() && empty.origins.is_empty() && empty.errors.is_empty());
}

#[test]
fn bad_config_is_fatal() {
    let mut slot = None;
    let error = glue::configure::<ByAction>(&mut slot, "{not json").unwrap_err();
    assert_eq!(error.class, ErrorClass::Fatal);
    assert!(error.message.starts_with("config is not JSON"), "{error}");
    assert_eq!(
        glue::configure::<ByAction>(&mut slot, "[1]").unwrap_err(),
        Error::fatal("config must be a JSON object")
    );
    assert_eq!(
        glue::configure::<ByAction>(&mut slot, r#"{"greting": "x"}"#).unwrap_err(),
        Error::fatal("unknown config key `greting` (known: greeting)")
    );
    assert!(slot.is_none(), "a failed configure leaves no transform behind");
    let error = glue::configure::<ByAction>(&mut slot, r#"{"greeting": 5}"#).unwrap_err();
    assert!(error.message.starts_with("config key `greeting`: invalid type"), "{error}");
}

#[test]
fn describe_fills_in_cargo_metadata() {
    let info = glue::describe(ByAction::describe(), "by-action", "1.2.3", "");
    assert_eq!(
        (info.name.as_str(), info.version.as_str(), info.description.as_str()),
        ("by-action", "1.2.3", "")
    );
    assert_eq!(info.config[0].name, "greeting");
    let named = glue::describe(PluginInfo { name: "mine".into(), ..PluginInfo::new() }, "pkg", "1", "d");
    assert_eq!((named.name.as_str(), named.description.as_str()), ("mine", "d"));
}

#[test]
fn logs_and_counters_are_recorded_natively() {
    testing::take_logs();
    let before = testing::counter("seen");
    testing::run_transform::<ByAction>(
        json!({"greeting": "hello"}),
        vec![event(0, "keep"), event(1, "drop")],
    );
    assert_eq!(testing::take_logs(), [(Level::Info, "configured: hello".to_owned())]);
    assert_eq!(testing::counter("seen") - before, 2);
}

#[test]
#[should_panic(expected = "configure failed: fatal: unknown config key `nope`")]
fn run_transform_panics_on_a_refused_config() {
    testing::run_transform::<ByAction>(json!({"nope": 1}), Vec::new());
}

/// Accepts everything but deletes; counts flushes; unhealthy once told so.
#[derive(Default)]
struct Recording {
    written: Vec<Event>,
    flushed: Vec<String>,
    out_of_range: bool,
}

impl Sink for Recording {
    fn open(config: Config) -> Result<Self, Error> {
        Ok(Recording { out_of_range: config.get_or("out_of_range", false)?, ..Recording::default() })
    }

    fn write(&mut self, events: Vec<Event>) -> Result<(), SinkError> {
        if self.out_of_range {
            return Err(SinkError::Records(vec![(events.len(), Error::poison("no such record"))]));
        }
        if events.iter().any(|event| event.op == Op::Truncate) {
            return Err(Error::retryable("target is read-only").into());
        }
        let failed: Vec<(usize, Error)> = (0..events.len())
            .filter(|i| events[*i].op == Op::Delete)
            .map(|i| (i, Error::poison("deletes are not supported")))
            .collect();
        self.written.extend(events.into_iter().filter(|event| event.op != Op::Delete));
        if failed.is_empty() { Ok(()) } else { Err(SinkError::Records(failed)) }
    }

    fn flush(&mut self, checkpoint: &str) -> Result<(), Error> {
        self.flushed.push(checkpoint.to_owned());
        Ok(())
    }
}

#[test]
fn sink_record_errors_map_back_to_batch_indexes() {
    let mut batch = cdc_sdk::wire::pack(&[event(0, "a")]).unwrap();
    batch.data.extend_from_slice(b"not json");
    batch.ends.push(batch.data.len() as u32);
    batch.push_with(|out| Event::delete("public.t", row! {"id" => 2}).write_wire(out)).unwrap();
    batch.push_with(|out| event(3, "b").write_wire(out)).unwrap();
    let mut slot = None;
    glue::open::<Recording>(&mut slot, "{}").unwrap();
    let errors = glue::write(&mut slot, &batch.data, &batch.ends).unwrap();
    let indexes: Vec<u32> = errors.iter().map(|(index, _)| *index).collect();
    assert_eq!(indexes, [1, 2]);
    assert!(errors[0].1.message.starts_with("cannot read input record: record is not valid JSON"));
    assert_eq!(errors[1].1, Error::poison("deletes are not supported"));
    assert_eq!(slot.as_ref().unwrap().written, [event(0, "a"), event(3, "b")]);
}

#[test]
fn sink_lifecycle_through_the_harness() {
    let mut sink = SinkHarness::<Recording>::open(json!({})).unwrap();
    assert_eq!(sink.write(vec![event(0, "a"), event(1, "b")]).unwrap(), []);
    assert_eq!(sink.write(vec![Event::truncate("t")]).unwrap_err(), Error::retryable("target is read-only"));
    sink.flush("t/0/2").unwrap();
    assert_eq!(sink.health(), Ok(()));
    assert_eq!(sink.sink().written.len(), 2);
    assert_eq!(sink.sink().flushed, ["t/0/2"]);
    sink.close();
    assert_eq!(sink.flush("t/0/3").unwrap_err(), Error::fatal("flush called while the sink is not open"));
    assert_eq!(
        sink.write(vec![event(0, "a")]).unwrap_err(),
        Error::fatal("write called while the sink is not open")
    );
    assert_eq!(sink.health(), Err("the sink is not open".to_owned()));
}

#[test]
fn sink_errors_for_records_it_was_not_given_are_fatal() {
    let mut sink = SinkHarness::<Recording>::open(json!({"out_of_range": true})).unwrap();
    assert_eq!(
        sink.write(vec![event(0, "a")]).unwrap_err(),
        Error::fatal("the sink reported an error for record 1 of a batch of 1")
    );
}
