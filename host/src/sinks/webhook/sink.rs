//! The webhook sink: its lanes share one [`WebhookClient`]; each lane sends its events in
//! order, one request at a time (of one event, or of up to `batch_size`), and stops at the
//! first request that fails: naming its event when it carried one, so that the lane settles it
//! before anything after it, or reporting the events from that request on, which the lane then
//! retries or splits.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::client::{WebhookClient, WebhookSettings};
use crate::event::ChangeEvent;
use crate::sinks::{Sink, SinkError, SinkFactory};

/// Builds webhook sinks that share one HTTP client.
pub struct WebhookFactory {
    sink_id: String,
    client: Arc<WebhookClient>,
}

/// A webhook sink for one lane.
struct WebhookSink {
    sink_id: String,
    client: Arc<WebhookClient>,
}

impl WebhookFactory {
    /// Validates the settings and builds the HTTP client.
    pub fn new(sink_id: &str, settings: &WebhookSettings) -> Result<Self, String> {
        Ok(WebhookFactory { sink_id: sink_id.to_owned(), client: Arc::new(WebhookClient::new(settings)?) })
    }
}

impl SinkFactory for WebhookFactory {
    fn sink_id(&self) -> &str {
        &self.sink_id
    }

    fn build(&self) -> Box<dyn Sink> {
        Box::new(WebhookSink { sink_id: self.sink_id.clone(), client: self.client.clone() })
    }
}

impl Sink for WebhookSink {
    fn write<'a>(&'a mut self, events: &'a [ChangeEvent]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            // One request at a time keeps per-key order; the first failure stops the write.
            let mut start = 0;
            for request in events.chunks(self.client.batch_size()) {
                self.client.send(request).await.map_err(|(class, error)| match request.len() {
                    1 => SinkError::event(&self.sink_id, start, class, error),
                    _ => SinkError::from_event(&self.sink_id, start, class, error),
                })?;
                start += request.len();
            }
            Ok(())
        })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), SinkError>> {
        // Every accepted request was answered with a delivering status: nothing is buffered.
        Box::pin(async { Ok(()) })
    }
}
