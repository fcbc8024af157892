//! Metrics in Prometheus text format: counters the pipeline's parts bump, rendered on
//! `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Metric names (DESIGN §8).
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
    /// Offset commits sent.
    pub const COMMITS: &str = "cdc_commits_total";
}

/// A registry of labelled counters.
#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, String), u64>>,
}

impl Metrics {
    /// Adds `delta` to counter `name` with label value `label` (empty for none).
    pub fn add(&self, name: &'static str, label: &str, delta: u64) {
        let mut counters = self.counters.lock().expect("metrics lock poisoned");
        *counters.entry((name, label.to_owned())).or_default() += delta;
    }

    /// The current value of a counter.
    pub fn get(&self, name: &'static str, label: &str) -> u64 {
        let counters = self.counters.lock().expect("metrics lock poisoned");
        counters.get(&(name, label.to_owned())).copied().unwrap_or(0)
    }

    /// Renders every counter in Prometheus text format; labels are named `id`.
    pub fn render(&self) -> String {
        let counters = self.counters.lock().expect("metrics lock poisoned");
        let mut text = String::new();
        let mut last_name = "";
        for ((name, label), value) in counters.iter() {
            if *name != last_name {
                let _ = writeln!(text, "# TYPE {name} counter");
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
        metrics.add(names::EVENTS_DELIVERED, "hook", 2);
        metrics.add(names::EVENTS_DELIVERED, "hook", 3);
        metrics.add(names::COMMITS, "", 1);
        assert_eq!(
            metrics.render(),
            "# TYPE cdc_commits_total counter\ncdc_commits_total 1\n\
             # TYPE cdc_sink_events_delivered_total counter\ncdc_sink_events_delivered_total{id=\"hook\"} 5\n"
        );
    }
}
