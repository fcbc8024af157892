//! The webhook sink: its lanes share one [`WebhookClient`]; each lane sends its events one at a
//! time, in order, and stops at the first that fails, naming it, so that the lane settles it
//! before anything after it.

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
            for (index, event) in events.iter().enumerate() {
                self.client
                    .send(event)
                    .await
                    .map_err(|(class, error)| SinkError::event(&self.sink_id, index, class, error))?;
            }
            Ok(())
        })
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<(), SinkError>> {
        // Every accepted request was answered with a delivering status: nothing is buffered.
        Box::pin(async { Ok(()) })
    }
}
