use serde_json::{Value, json};

use super::*;

fn filter(config: &str) -> Filter {
    Filter::new(Config::parse(config).expect("valid config"))
}

fn pack(records: &[&str]) -> (Vec<u8>, Vec<u32>) {
    let mut data = Vec::new();
    let mut ends = Vec::new();
    for record in records {
        data.extend_from_slice(record.as_bytes());
        ends.push(data.len() as u32);
    }
    (data, ends)
}

fn run(filter: &Filter, records: &[&str]) -> Output {
    let (data, ends) = pack(records);
    filter.transform(&data, &ends).expect("batch ok")
}

fn event(op: &str, key: Value, before: Value, after: Value) -> String {
    json!({
        "op": op,
        "table": {"database": "shop", "schema": "public", "table": "users"},
        "key": key,
        "before": before,
        "after": after,
        "source": {"connector": "postgresql", "lsn": 42},
        "ts_ms": 1_700_000_000_000_i64,
        "id": "cdc.users/0/7",
    })
    .to_string()
}

fn parsed(output: &Output, i: usize) -> Value {
    serde_json::from_slice(output.record(i)).expect("output is JSON")
}

fn config_error(text: &str) -> String {
    let error = Config::parse(text).expect_err("config should be rejected");
    assert_eq!(error.class, ErrorClass::Fatal, "{error:?}");
    error.message
}

// ---- config ----

#[test]
fn empty_and_null_configs_are_defaults() {
    for text in ["", "  ", "null", "{}", r#"{"drop_where": null, "mask": null, "mask_with": null}"#] {
        assert_eq!(Config::parse(text).unwrap(), Config::default(), "{text:?}");
    }
    assert_eq!(Config::default().mask_with, "***");
}

#[test]
fn full_config_parses() {
    let config = Config::parse(
        r#"{"drop_where": {"column": "status", "equals": "test"}, "mask": ["email", "phone", "email"], "mask_with": "<redacted>"}"#,
    )
    .unwrap();
    assert_eq!(
        config,
        Config {
            drop_where: Some(DropWhere { column: "status".into(), equals: json!("test") }),
            mask: vec!["email".into(), "phone".into()],
            mask_with: "<redacted>".into(),
        }
    );
}

#[test]
fn unknown_keys_are_fatal_and_named() {
    let message = config_error(r#"{"mask": ["a"], "maks_with": "x"}"#);
    assert!(message.contains("`maks_with`"), "{message}");
    let message = config_error(r#"{"drop_where": {"column": "a", "equals": 1, "not": true}}"#);
    assert!(message.contains("`drop_where.not`"), "{message}");
}

#[test]
fn bad_types_are_fatal_and_named() {
    let cases = [
        (r#"{"mask": "email"}"#, "`mask`"),
        (r#"{"mask": ["email", 3]}"#, "`mask[1]`"),
        (r#"{"mask_with": 0}"#, "`mask_with`"),
        (r#"{"drop_where": "status=test"}"#, "`drop_where`"),
        (r#"{"drop_where": {"column": 1, "equals": 1}}"#, "`drop_where.column`"),
        (r#"{"drop_where": {"column": "", "equals": 1}}"#, "`drop_where.column`"),
        (r#"{"drop_where": {"column": "status"}}"#, "`drop_where.equals`"),
        (r#"{"drop_where": {"equals": "x"}}"#, "`drop_where.column`"),
    ];
    for (text, key) in cases {
        let message = config_error(text);
        assert!(message.contains(key), "{text}: {message}");
    }
}

#[test]
fn config_that_is_not_an_object_is_fatal() {
    assert!(config_error("{").contains("not valid JSON"));
    assert!(config_error("[1]").contains("must be a JSON object"));
}

#[test]
fn summary_says_what_is_dropped_and_masked() {
    assert_eq!(Config::default().summary(), "dropping nothing; masking nothing");
    let config =
        Config::parse(r#"{"drop_where": {"column": "status", "equals": "test"}, "mask": ["email"]}"#)
            .unwrap();
    assert_eq!(
        config.summary(),
        r#"dropping events whose after.status == "test"; masking ["email"] in key/before/after with "***""#
    );
}

#[test]
fn describe_lists_the_three_params() {
    let info = describe();
    assert_eq!(info.name, "filter-mask");
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    assert!(info.capabilities.is_empty());
    let names: Vec<_> = info.config.iter().map(|p| p.name).collect();
    assert_eq!(names, ["drop_where", "mask", "mask_with"]);
    for param in &info.config {
        assert!(!param.required && !param.secret);
        let default = param.default_value.expect("every param has a default");
        // Each default is JSON text, and the defaults together are a valid config.
        let value: Value = serde_json::from_str(default).unwrap();
        let config = Config::parse(&json!({ param.name: value }).to_string()).unwrap();
        assert_eq!(config, Config::default());
    }
    let kinds: Vec<_> = info.config.iter().map(|p| p.kind).collect();
    assert_eq!(kinds, ["object", "list", "string"]);
}

// ---- drop ----

#[test]
fn drops_events_whose_after_matches() {
    let f = filter(r#"{"drop_where": {"column": "status", "equals": "test"}}"#);
    let test = event("c", json!({"id": 1}), Value::Null, json!({"id": 1, "status": "test"}));
    let live = event("c", json!({"id": 2}), Value::Null, json!({"id": 2, "status": "live"}));
    let out = run(&f, &[&test, &live, &test]);
    assert_eq!(out.origins, [1]);
    assert!(out.errors.is_empty());
    assert_eq!(out.record(0), live.as_bytes(), "kept records are untouched");
}

#[test]
fn keeps_deletes_and_rows_without_the_column() {
    let f = filter(r#"{"drop_where": {"column": "status", "equals": "test"}}"#);
    let delete = event("d", json!({"id": 1}), json!({"id": 1, "status": "test"}), Value::Null);
    let no_column = event("u", json!({"id": 1}), json!({"status": "test"}), json!({"id": 1}));
    let unavailable =
        event("u", json!({"id": 1}), Value::Null, json!({"id": 1, "status": {"$unavailable": true}}));
    let out = run(&f, &[&delete, &no_column, &unavailable]);
    assert_eq!(out.origins, [0, 1, 2]);
}

#[test]
fn drop_compares_json_values() {
    let row = |v: Value| event("c", json!({"id": 1}), Value::Null, json!({"id": 1, "n": v}));
    let kept = |config: Value, v: Value| {
        let f = filter(&json!({"drop_where": config}).to_string());
        run(&f, &[&row(v)]).origins.len() == 1
    };
    // A string matches a text column, not a number that prints the same.
    assert!(!kept(json!({"column": "n", "equals": "5"}), json!("5")));
    assert!(kept(json!({"column": "n", "equals": "5"}), json!(5)));
    // Escapes decode before comparing.
    assert!(!kept(json!({"column": "n", "equals": "a\"b"}), json!("a\"b")));
    // Numbers compare by value.
    assert!(!kept(json!({"column": "n", "equals": 5}), json!(5)));
    assert!(!kept(json!({"column": "n", "equals": 5}), json!(5.0)));
    assert!(kept(json!({"column": "n", "equals": 5}), json!(5.5)));
    // Booleans, null and tagged values.
    assert!(!kept(json!({"column": "n", "equals": true}), json!(true)));
    assert!(kept(json!({"column": "n", "equals": true}), json!(false)));
    assert!(!kept(json!({"column": "n", "equals": null}), Value::Null));
    assert!(kept(json!({"column": "n", "equals": null}), json!("null")));
    assert!(!kept(json!({"column": "n", "equals": {"$decimal": "1.50"}}), json!({"$decimal": "1.50"})));
    assert!(kept(json!({"column": "n", "equals": {"$decimal": "1.50"}}), json!({"$decimal": "1.5"})));
}

// ---- mask ----

#[test]
fn masks_key_before_and_after() {
    let f = filter(r#"{"mask": ["email", "phone"]}"#);
    let input = event(
        "u",
        json!({"email": "a@x.io"}),
        json!({"id": 1, "email": "a@x.io", "phone": "555", "name": "A"}),
        json!({"id": 1, "email": "b@x.io", "phone": "556", "name": "A"}),
    );
    let out = run(&f, &[&input]);
    assert_eq!(out.origins, [0]);
    let expected = event(
        "u",
        json!({"email": "***"}),
        json!({"id": 1, "email": "***", "phone": "***", "name": "A"}),
        json!({"id": 1, "email": "***", "phone": "***", "name": "A"}),
    );
    // Byte-exact: only the masked values change.
    assert_eq!(std::str::from_utf8(out.record(0)).unwrap(), expected);
}

#[test]
fn null_and_unavailable_stay_as_they_are() {
    let f = filter(r#"{"mask": ["email", "doc"]}"#);
    let input = event(
        "u",
        json!({"id": 1}),
        Value::Null,
        json!({"id": 1, "email": null, "doc": {"$unavailable": true}}),
    );
    let out = run(&f, &[&input]);
    assert_eq!(out.record(0), input.as_bytes());
    // Whitespace inside the tag does not fool the check.
    let spaced = r#"{"op":"u","key":null,"before":null,"after":{"doc": { "$unavailable" : true }}}"#;
    let out = run(&f, &[spaced]);
    assert_eq!(out.record(0), spaced.as_bytes());
}

#[test]
fn other_types_become_the_mask_string() {
    let f = filter(r#"{"mask": ["a", "b", "c", "d", "e", "f"], "mask_with": "x\"y"}"#);
    let input = event(
        "c",
        Value::Null,
        Value::Null,
        json!({
            "a": 42, "b": {"$decimal": "1.50"}, "c": [1, 2], "d": true,
            "e": {"$unavailable": true, "other": 1}, "f": 2.5, "g": "kept",
        }),
    );
    let out = run(&f, &[&input]);
    let after = &parsed(&out, 0)["after"];
    for column in ["a", "b", "c", "d", "e", "f"] {
        assert_eq!(after[column], json!("x\"y"), "{column}");
    }
    assert_eq!(after["g"], json!("kept"));
}

#[test]
fn escaped_column_names_match() {
    let f = filter(r#"{"mask": ["email"]}"#);
    let input = r#"{"op":"c","after":{"em\u0061il":"a@x.io","id":1}}"#;
    let out = run(&f, &[input]);
    assert_eq!(
        std::str::from_utf8(out.record(0)).unwrap(),
        r#"{"op":"c","after":{"em\u0061il":"***","id":1}}"#
    );
}

#[test]
fn drop_and_mask_together() {
    let f = filter(
        r##"{"drop_where": {"column": "status", "equals": "test"}, "mask": ["email"], "mask_with": "#"}"##,
    );
    let test = event("c", Value::Null, Value::Null, json!({"email": "t@x", "status": "test"}));
    let live = event("c", Value::Null, Value::Null, json!({"email": "l@x", "status": "live"}));
    let out = run(&f, &[&live, &test, &live]);
    assert_eq!(out.origins, [0, 2]);
    assert_eq!(out.ends.len(), 2);
    for i in 0..2 {
        assert_eq!(parsed(&out, i)["after"], json!({"email": "#", "status": "live"}));
    }
}

// ---- poison and batch layout ----

#[test]
fn poison_record_in_a_batch_of_three() {
    let f = filter(r#"{"mask": ["email"]}"#);
    let good = event("c", Value::Null, Value::Null, json!({"email": "a@x"}));
    let out = run(&f, &[&good, r#"{"op":"c","after":{"email":"#, &good]);
    assert_eq!(out.origins, [0, 2]);
    assert_eq!(out.errors.len(), 1);
    assert_eq!(out.errors[0].index, 1);
    assert_eq!(out.errors[0].error.class, ErrorClass::Poison);
    assert!(out.errors[0].error.message.contains("EOF"), "{:?}", out.errors[0]);
    for i in 0..2 {
        assert_eq!(parsed(&out, i)["after"], json!({"email": "***"}));
    }
    assert_eq!(out.ends[1] as usize, out.data.len());
}

#[test]
fn invalid_wire_records_are_poison_with_the_problem() {
    let f = filter(r#"{"mask": ["email"]}"#);
    let cases = [
        ("", "EOF"),
        ("[1]", "expected a change event object"),
        (r#"{"op":"x"}"#, "field `op`"),
        (r#"{"op":1}"#, "field `op`"),
        (r#"{"op":"c","after":"row"}"#, "field `after` to be a row object or null"),
        (r#"{"op":"c","key":[1]}"#, "field `key` to be a row object or null"),
        (r#"{"op":"c","source":5}"#, "field `source`"),
        (r#"{"op":"c","table":"t"}"#, "field `table`"),
        (r#"{"op":"c","after":{"email":"a"}} x"#, "trailing characters"),
        ("{\"op\":\"c\",\"after\":{\"email\":\"\u{0}\"}}", "control character"),
    ];
    let records: Vec<&str> = cases.iter().map(|(record, _)| *record).collect();
    let out = run(&f, &records);
    assert!(out.origins.is_empty() && out.data.is_empty() && out.ends.is_empty());
    assert_eq!(out.errors.len(), cases.len());
    for (i, ((record, problem), error)) in cases.iter().zip(&out.errors).enumerate() {
        assert_eq!(error.index, i as u32);
        assert_eq!(error.error.class, ErrorClass::Poison);
        assert!(error.error.message.starts_with("record is not valid wire JSON: "));
        assert!(error.error.message.contains(problem), "{record:?}: {}", error.error.message);
    }
}

#[test]
fn invalid_utf8_is_poison() {
    let f = filter(r#"{"mask": ["email"]}"#);
    // In a plain column, a masked column and an ignored field.
    let mut data = Vec::new();
    let mut ends = Vec::new();
    for prefix in [r#"{"op":"c","after":{"name":""#, r#"{"op":"c","after":{"email":""#, r#"{"op":"c","x":""#]
    {
        data.extend_from_slice(prefix.as_bytes());
        data.extend_from_slice(&[0xff, b'"', b'}']);
        if prefix.contains("after") {
            data.push(b'}');
        }
        ends.push(data.len() as u32);
    }
    let out = f.transform(&data, &ends).unwrap();
    assert!(out.origins.is_empty());
    assert_eq!(out.errors.iter().map(|e| e.index).collect::<Vec<_>>(), [0, 1, 2]);
    for error in &out.errors {
        assert!(error.error.message.contains("not UTF-8"), "{error:?}");
    }
}

#[test]
fn origins_ascend_with_drops_and_errors_mixed() {
    let f = filter(r#"{"drop_where": {"column": "k", "equals": 0}, "mask": ["s"]}"#);
    let row = |k: i64| event("c", Value::Null, Value::Null, json!({"k": k, "s": "secret"}));
    let records = [row(1), row(0), "nope".to_owned(), row(2), row(0), row(3)];
    let refs: Vec<&str> = records.iter().map(String::as_str).collect();
    let out = run(&f, &refs);
    assert_eq!(out.origins, [0, 3, 5]);
    assert_eq!(out.errors.iter().map(|e| e.index).collect::<Vec<_>>(), [2]);
    for (i, k) in [1, 2, 3].into_iter().enumerate() {
        assert_eq!(parsed(&out, i)["after"], json!({"k": k, "s": "***"}));
    }
    assert!(out.ends.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn empty_batch_and_passthrough() {
    let f = filter("{}");
    let out = f.transform(&[], &[]).unwrap();
    assert_eq!(out, Output::default());
    // With nothing configured every valid record comes out byte-identical, unknown fields too.
    let record = r#"{ "op" : "r", "key": null, "extra": [1, {"a": 2}], "after": {"x": 1} }"#;
    let out = run(&f, &[record, record]);
    assert_eq!(out.origins, [0, 1]);
    assert_eq!(out.data, [record, record].concat().as_bytes());
}

#[test]
fn malformed_batch_layout_is_fatal() {
    let f = filter("{}");
    let error = f.transform(b"{}{}", &[2, 1]).unwrap_err();
    assert_eq!(error.class, ErrorClass::Fatal);
    let error = f.transform(b"{}", &[3]).unwrap_err();
    assert_eq!(error.class, ErrorClass::Fatal);
    assert!(error.message.contains("malformed batch"));
}

/// Throughput check: `cargo test --release -- --ignored --nocapture throughput`.
#[test]
#[ignore]
fn throughput() {
    let f = filter(r#"{"drop_where": {"column": "status", "equals": "test"}, "mask": ["email", "phone"]}"#);
    let bio = "y".repeat(200);
    let record = event(
        "u",
        json!({"id": 1}),
        json!({"id": 1, "email": "a@x.io", "phone": "555", "name": "Alice", "status": "live", "bio": bio}),
        json!({"id": 1, "email": "b@x.io", "phone": "556", "name": "Alice", "status": "live", "bio": bio}),
    );
    let records = vec![record.as_str(); 10_000];
    let (data, ends) = pack(&records);
    let start = std::time::Instant::now();
    let rounds = 20;
    for _ in 0..rounds {
        let out = f.transform(&data, &ends).unwrap();
        assert_eq!(out.origins.len(), records.len());
    }
    let secs = start.elapsed().as_secs_f64();
    let mb = (data.len() * rounds) as f64 / 1e6;
    println!("{:.0} records/s, {:.0} MB/s", (records.len() * rounds) as f64 / secs, mb / secs);
}
