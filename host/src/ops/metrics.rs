//! Metrics in Prometheus text format. Parts register a [`Counter`] or [`Gauge`] once and bump it
//! on the hot path with one atomic add; `/metrics` renders them all.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Metric names (docs/architecture.md, operations).
pub mod names {
    /// Records received from the source.
    pub const RECORDS_CONSUMED: &str = "cdc_records_consumed_total";
    /// Events delivered (made durable) per sink.
    pub const EVENTS_DELIVERED: &str = "cdc_sink_events_delivered_total";
    /// Retries per sink.
    pub const SINK_RETRIES: &str = "cdc_sink_retries_total";
    /// Records written to the DLQ, per stage.
    pub const DLQ_RECORDS: &str = "cdc_dlq_records_total";
    /// Events dropped per transform.
    pub const TRANSFORM_DROPPED: &str = "cdc_transform_events_dropped_total";
    /// Plugin traps per plugin.
    pub const PLUGIN_TRAPS: &str = "cdc_plugin_traps_total";
    /// Plugin calls per plugin.
    pub const PLUGIN_CALLS: &str = "cdc_plugin_calls_total";
    /// Time spent in plugin calls per plugin, in microseconds (÷ calls: mean call latency).
    pub const PLUGIN_CALL_MICROS: &str = "cdc_plugin_call_microseconds_total";
    /// Records given to a plugin.
    pub const PLUGIN_RECORDS_IN: &str = "cdc_plugin_records_in_total";
    /// Records a plugin returned.
    pub const PLUGIN_RECORDS_OUT: &str = "cdc_plugin_records_out_total";
    /// Records a plugin refused (poison verdicts and records failed alone).
    pub const PLUGIN_RECORDS_ERRORED: &str = "cdc_plugin_records_errored_total";
    /// Offset commits sent.
    pub const COMMITS: &str = "cdc_commits_total";
    /// Consumer lag per partition (high watermark minus committed position).
    pub const CONSUMER_LAG: &str = "cdc_consumer_lag";
    /// Gauge, per replication slot: bytes of WAL the slot holds (embedded mode).
    pub const REPLICATION_LAG_BYTES: &str = "cdc_replication_lag_bytes";
}

/// A monotonically increasing counter.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// Adds `delta`.
    pub fn add(&self, delta: u64) {
        self.0.fetch_add(delta, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Clone, Default)]
pub struct Gauge(Arc<AtomicI64>);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, value: i64) {
        self.0.store(value, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone)]
enum Metric {
    Counter(Counter),
    Gauge(Gauge),
}

/// The registry of labelled metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    metrics: Mutex<BTreeMap<(&'static str, String), Metric>>,
}

impl Metrics {
    /// The counter `name` with label value `label` (empty for none), registered on first use.
    pub fn counter(&self, name: &'static str, label: &str) -> Counter {
        let mut metrics = self.metrics.lock().expect("metrics lock poisoned");
        let metric =
            metrics.entry((name, label.to_owned())).or_insert_with(|| Metric::Counter(Counter::default()));
        match metric {
            Metric::Counter(counter) => counter.clone(),
            Metric::Gauge(_) => panic!("metric {name} is registered as a gauge"),
        }
    }

    /// The gauge `name` with label value `label`, registered on first use.
    pub fn gauge(&self, name: &'static str, label: &str) -> Gauge {
        let mut metrics = self.metrics.lock().expect("metrics lock poisoned");
        let metric =
            metrics.entry((name, label.to_owned())).or_insert_with(|| Metric::Gauge(Gauge::default()));
        match metric {
            Metric::Gauge(gauge) => gauge.clone(),
            Metric::Counter(_) => panic!("metric {name} is registered as a counter"),
        }
    }

    /// Renders every metric in Prometheus text format; labels are named `id`.
    pub fn render(&self) -> String {
        let metrics = self.metrics.lock().expect("metrics lock poisoned");
        let mut text = String::new();
        let mut last_name = "";
        for ((name, label), metric) in metrics.iter() {
            let (kind, value) = match metric {
                Metric::Counter(counter) => ("counter", counter.get() as i64),
                Metric::Gauge(gauge) => ("gauge", gauge.0.load(Ordering::Relaxed)),
            };
            if *name != last_name {
                let _ = writeln!(text, "# TYPE {name} {kind}");
                last_name = name;
            }
            if label.is_empty() {
                let _ = writeln!(text, "{name} {value}");
            } else {
                let label = label.replace('\\', "\\\\").replace('"', "\\\"");
                let _ = writeln!(text, "{name}{{id=\"{label}\"}} {value}");
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let metrics = Metrics::default();
        let delivered = metrics.counter(names::EVENTS_DELIVERED, "hook");
        delivered.add(2);
        metrics.counter(names::EVENTS_DELIVERED, "hook").add(3);
        metrics.counter(names::COMMITS, "").add(1);
        metrics.gauge(names::CONSUMER_LAG, "t[0]").set(-4);
        assert_eq!(
            metrics.render(),
            "# TYPE cdc_commits_total counter\ncdc_commits_total 1\n\
             # TYPE cdc_consumer_lag gauge\ncdc_consumer_lag{id=\"t[0]\"} -4\n\
             # TYPE cdc_sink_events_delivered_total counter\ncdc_sink_events_delivered_total{id=\"hook\"} 5\n"
        );
    }
}
