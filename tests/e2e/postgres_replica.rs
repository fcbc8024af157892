//! The PostgreSQL sink in replica mode, end to end: PostgreSQL → Debezium → Kafka → `cdc run` →
//! replica tables in the same database, compared with the source row for row and type for type,
//! in JSON and Avro, through inserts, updates (a key change and an unchanged TOAST value among
//! them), deletes and a truncate.

use std::time::Duration;

use cdc_tests::receiver::eventually;
use cdc_tests::scenario::{PipelineParts, Scenario, postgres_replica_sink};
use cdc_tests::schema_registry::TestSchemaRegistry;

/// Every type of the Debezium all-types fixture, and a few more.
pub const ALL_TYPES: &str = "id integer PRIMARY KEY, num_fixed numeric(12,3), num_any numeric, \
    money_like decimal(10,2), ts timestamp, tstz timestamptz, d date, t time, j json, jb jsonb, u uuid, \
    int_arr int[], text_arr text[], b boolean, by bytea, f8 float8, f4 real, small smallint, big bigint, \
    v varchar(20), big_text text";

/// Text too large and too random to stay inline: PostgreSQL TOASTs it, and Debezium does not
/// send it again in an update that leaves it alone.
const LARGE_TEXT: &str = "(SELECT string_agg(md5(i::text), '') FROM generate_series(1, 400) i)";

const CONVERGE_TIMEOUT: Duration = Duration::from_secs(150);

/// Rows of a table as JSON text in key order, or `None` when it does not exist yet.
async fn rows(scenario: &Scenario, table: &str) -> Option<Vec<String>> {
    let sql = format!("SELECT row_to_json(r)::text FROM {table} r ORDER BY id");
    let rows = scenario.pg.query(&sql, &[]).await.ok()?;
    Some(rows.iter().map(|row| row.get(0)).collect())
}

/// `(column, type)` of a table, in order.
async fn column_types(scenario: &Scenario, table: &str) -> Vec<(String, String)> {
    let sql = "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute \
               WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum";
    let rows = scenario.pg.query(sql, &[&table]).await.unwrap();
    rows.iter().map(|row| (row.get(0), row.get(1))).collect()
}

/// Waits until the replica holds exactly the source's rows; panics with both and the log.
async fn assert_converges(scenario: &Scenario, source: &str, replica: &str, log: impl Fn() -> String) {
    let converged = eventually(CONVERGE_TIMEOUT, || async {
        let expected = rows(scenario, source).await;
        expected.is_some() && rows(scenario, replica).await == expected
    })
    .await;
    if !converged {
        let (expected, found) = (rows(scenario, source).await, rows(scenario, replica).await);
        panic!("the replica never matched the source\nsource: {expected:#?}\nreplica: {found:#?}\n{}", log());
    }
}

async fn replica_follows_every_change(kafka: String, keep: impl Sized) {
    let scenario = Scenario::new(ALL_TYPES).await;
    let target_schema = format!("replica_{}", scenario.names.table);
    let parts = PipelineParts {
        sinks: postgres_replica_sink("replica", &scenario.env, &target_schema),
        kafka,
        ..PipelineParts::default()
    };
    let (mut cdc, _) = scenario.start(&parts, &[]);
    scenario.wait_streaming(&cdc).await;
    let source = format!("public.{}", scenario.names.table);
    let replica = format!("{target_schema}.{}", scenario.names.table);
    scenario
        .sql(&format!(
            "INSERT INTO {source} VALUES (1, 12.340, 3.14159265358979, 99.95, '2024-05-06 07:08:09.123456', \
               '2024-05-06 07:08:09.5+02', '2024-05-06', '12:34:56.789', '{{\"b\": 1,  \"a\": [1, 2]}}', \
               '{{\"z\": null, \"a\": \"x\"}}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{{1,NULL,3}}', \
               '{{\"a,b\",NULL,\"say \\\"hi\\\"\"}}', true, '\\x00ff10', 1.5e300, 0.1, -32768, -9223372036854775808, \
               'varchar ü', {LARGE_TEXT});
             INSERT INTO {source} VALUES (2, -0.001, -1e-20, 0, '1969-12-31 23:59:59.999999', '1970-01-01 00:00:00Z', \
               '0001-01-01', '00:00:00', '[]', '[]', '00000000-0000-0000-0000-000000000000', '{{}}', '{{}}', false, \
               '\\x', -2.5, 3.25, 32767, 9223372036854775807, '', 'short');
             INSERT INTO {source} (id) VALUES (3);"
        ))
        .await;
    // An update that leaves the TOASTed text alone, a key change, a delete.
    scenario
        .sql(&format!(
            "UPDATE {source} SET num_fixed = 1.000, v = 'updated' WHERE id = 1;
             UPDATE {source} SET id = 20 WHERE id = 2;
             DELETE FROM {source} WHERE id = 3;
             INSERT INTO {source} (id, big_text) VALUES (4, {LARGE_TEXT}), (5, 'five');
             UPDATE {source} SET small = 4 WHERE id = 4;"
        ))
        .await;
    assert_converges(&scenario, &source, &replica, || cdc.log()).await;
    let types = column_types(&scenario, &source).await;
    assert_eq!(column_types(&scenario, &replica).await, types, "the replica's columns and types");
    let toasted: bool = scenario
        .pg
        .query_one(&format!("SELECT big_text = {LARGE_TEXT} FROM {replica} WHERE id = 4"), &[])
        .await
        .unwrap()
        .get(0);
    assert!(toasted, "an unchanged TOAST value stays in the replica");

    // A truncate empties the replica; what follows it lands.
    scenario
        .sql(&format!("TRUNCATE {source}; INSERT INTO {source} (id, v) VALUES (9, 'nine'), (10, 'ten');"))
        .await;
    assert_converges(&scenario, &source, &replica, || cdc.log()).await;

    assert!(cdc.terminate(Duration::from_secs(60)).success(), "{}", cdc.log());
    scenario.sql(&format!("DROP SCHEMA {target_schema} CASCADE")).await;
    scenario.cleanup().await;
    drop(keep);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_equals_its_source_through_every_change_and_type_in_json() {
    replica_follows_every_change("  schemas_enable: true\n".into(), ()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_equals_its_source_through_every_change_and_type_in_avro() {
    let registry = TestSchemaRegistry::start().await.expect("test registry starts");
    let kafka = format!("  value_converter: avro\n  schema_registry_url: {}\n", registry.url());
    replica_follows_every_change(kafka, registry).await;
}
