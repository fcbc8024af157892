//! The webhook sink: its lanes share one [`WebhookClient`]. A lane splits its events into at most
//! `max_in_flight` streams by key; each stream sends its events in order, one request at a time
//! (of one event, or of up to `batch_size`), and stops at its first request that fails, while the
//! other streams carry on. The write then reports the earliest failed event in source order:
//! every event before it was delivered. It names the event when its request carried only that
//! one, so that the lane settles it before anything after it; otherwise it reports the events
//! from it on, which the lane retries or splits. Events after it that other streams delivered
//! are sent again, under the same ids, never ahead of an earlier change of their key.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use futures::future::{BoxFuture, join_all};

use super::client::{WebhookClient, WebhookError, WebhookSettings};
use crate::error::ErrorClass;
use crate::event::{ChangeEvent, Row, Value};
use crate::sinks::{Batching, Sink, SinkError, SinkFactory};

/// Builds webhook sinks that share one HTTP client.
pub struct WebhookFactory {
    sink_id: String,
    client: Arc<WebhookClient>,
    batching: Batching,
    max_in_flight: usize,
}

/// A webhook sink for one lane.
struct WebhookSink {
    sink_id: String,
    client: Arc<WebhookClient>,
    max_in_flight: usize,
}

impl WebhookFactory {
    /// Validates the settings and builds the HTTP client.
    pub fn new(sink_id: &str, settings: &WebhookSettings) -> Result<Self, String> {
        let max_in_flight = settings.max_in_flight.max(1);
        Ok(WebhookFactory {
            sink_id: sink_id.to_owned(),
            client: Arc::new(WebhookClient::new(settings)?),
            // A write fills every request in flight when the lane waits for it.
            batching: Batching {
                max_events: settings.batch_size.max(1) * max_in_flight,
                linger: settings.batch_timeout,
            },
            max_in_flight,
        })
    }
}

impl SinkFactory for WebhookFactory {
    fn sink_id(&self) -> &str {
        &self.sink_id
    }

    fn build(&self) -> Box<dyn Sink> {
        Box::new(WebhookSink {
            sink_id: self.sink_id.clone(),
            client: self.client.clone(),
            max_in_flight: self.max_in_flight,
        })
    }

    fn batching(&self) -> Batching {
        self.batching
    }
}

/// The first failed request of a stream: the source index of its first event, how many events
/// it carried, and why it failed.
struct Failed {
    index: usize,
    events: usize,
    class: ErrorClass,
    error: WebhookError,
}

impl WebhookSink {
    /// Sends one stream's events (source indices, in order) in requests of `batch_size`,
    /// stopping at the first failure.
    async fn send_stream(&self, events: &[ChangeEvent], stream: &[usize]) -> Result<(), Failed> {
        for request in stream.chunks(self.client.batch_size()) {
            let carried: Vec<&ChangeEvent> = request.iter().map(|&index| &events[index]).collect();
            if let Err((class, error)) = self.client.send(&carried).await {
                return Err(Failed { index: request[0], events: request.len(), class, error });
            }
        }
        Ok(())
    }
}

impl Sink for WebhookSink {
    fn write<'a>(&'a mut self, events: &'a [ChangeEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let streams = key_streams(events, self.max_in_flight);
            let results = join_all(streams.iter().map(|stream| self.send_stream(events, stream))).await;
            let Some(failed) = results.into_iter().filter_map(Result::err).min_by_key(|failed| failed.index)
            else {
                return Ok(());
            };
            Err(match failed.events {
                1 => SinkError::event(&self.sink_id, failed.index, failed.class, failed.error),
                _ => SinkError::from_event(&self.sink_id, failed.index, failed.class, failed.error),
            })
        })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), SinkError>> {
        // Every accepted request was answered with a delivering status: nothing is buffered.
        Box::pin(async { Ok(()) })
    }
}

/// The indices of `events` split into at most `count` streams by key, each in source order:
/// every change of a key is in the same stream. Events without a key go by table.
fn key_streams(events: &[ChangeEvent], count: usize) -> Vec<Vec<usize>> {
    if count <= 1 {
        return vec![(0..events.len()).collect()];
    }
    let mut streams = vec![Vec::new(); count];
    for (index, event) in events.iter().enumerate() {
        let mut hasher = DefaultHasher::new();
        match &event.key {
            Some(key) => hash_row(key, &mut hasher),
            None => event.table.hash(&mut hasher),
        }
        streams[(hasher.finish() % count as u64) as usize].push(index);
    }
    streams.retain(|stream| !stream.is_empty());
    streams
}

fn hash_row(row: &Row, hasher: &mut impl Hasher) {
    for (name, value) in row.iter() {
        name.hash(hasher);
        hash_value(value, hasher);
    }
}

fn hash_value(value: &Value, hasher: &mut impl Hasher) {
    std::mem::discriminant(value).hash(hasher);
    match value {
        Value::Null | Value::Unavailable => {}
        Value::Bool(b) => b.hash(hasher),
        Value::Int(i) => i.hash(hasher),
        Value::Float(f) => f.to_bits().hash(hasher),
        Value::Decimal(d) => d.as_str().hash(hasher),
        Value::Text(t) | Value::TimestampTz(t) | Value::Json(t) | Value::Uuid(t) => t.hash(hasher),
        Value::Bytes(b) => b.hash(hasher),
        Value::Date(d) => d.hash(hasher),
        Value::Time(t) | Value::Timestamp(t) => t.hash(hasher),
        Value::Array(items) => items.iter().for_each(|item| hash_value(item, hasher)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_keeps_to_one_stream_in_source_order() {
        let events: Vec<ChangeEvent> =
            (0..200).map(|offset| crate::testing::event("t", 0, offset, offset % 7)).collect();
        let streams = key_streams(&events, 4);
        assert!(streams.len() > 1 && streams.len() <= 4, "{} streams", streams.len());
        let mut seen: Vec<usize> = streams.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..200).collect::<Vec<_>>(), "every event in exactly one stream");
        for stream in &streams {
            assert!(stream.windows(2).all(|pair| pair[0] < pair[1]), "in source order");
            let keys: std::collections::BTreeSet<i64> = stream.iter().map(|&i| i as i64 % 7).collect();
            for other in streams.iter().filter(|other| !std::ptr::eq(*other, stream)) {
                assert!(other.iter().all(|&i| !keys.contains(&(i as i64 % 7))), "a key in two streams");
            }
        }
        assert_eq!(key_streams(&events, 1), vec![(0..200).collect::<Vec<_>>()]);
    }
}
