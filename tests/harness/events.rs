//! Change events built in memory, for suites that drive plugins and sinks without a source.

use cdc_host::event::ChangeEvent;

/// An insert of row `(id, 'row <id>')` into `shop.public.t`, at offset `id` of partition 0 of
/// `topic`.
pub fn insert(topic: &str, id: i64) -> ChangeEvent {
    cdc_host::testing::event(topic, 0, id, id)
}
