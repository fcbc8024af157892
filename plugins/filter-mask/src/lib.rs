//! `filter-mask`: a cdc transform plugin that drops change events by a column value and masks
//! columns. The logic lives in [`logic`] (plain Rust, tested natively); the WIT bindings glue is
//! compiled only for wasm32, so `cargo test` needs no component runtime.

pub mod logic;

#[cfg(target_arch = "wasm32")]
mod component;
