//! `cdc-event`: the vocabulary of a change event and the codec it crosses the plugin boundary
//! in, shared by the `cdc` host, the guest SDK and every plugin, so that the format is written
//! once.
//!
//! - [`Op`], [`TableId`], [`Row`] (of [`ColumnName`]s and [`Value`]s) and [`Decimal`]: what
//!   changed, where, and the typed, exact column values.
//! - [`wire`]: the wire form of one record (`wit/types.wit`), written straight into a buffer and
//!   read without an intermediate JSON tree.
//! - [`PackedBatch`]: records packed into one buffer with their end offsets, as in the WIT
//!   `batch`.
//! - [`PluginInfo`] and [`ConfigParam`]: what a plugin says about itself.
//!
//! What only the host needs (positions, decoding from Debezium, big-integer decimals) stays in
//! the host; the plugin-facing event with its builders lives in the SDK.

mod batch;
mod describe;
mod value;
pub mod wire;

pub use batch::{BatchError, PackedBatch, split};
pub use describe::{ConfigParam, PluginInfo};
pub use value::{ColumnName, Decimal, NotADecimal, Op, Row, TableId, Value};
