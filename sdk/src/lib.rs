//! `cdc-sdk`: write `cdc` transform and sink plugins against typed change events.
//!
//! A plugin is a WebAssembly component (`wasm32-wasip2`) exporting the `transform` or `sink`
//! world of the `cdc:plugin` WIT package. This crate hides that package and the packed batches
//! it uses behind plain Rust:
//!
//! - [`Event`], [`Row`], [`Value`]: one change event with typed values ([`event`]), read from
//!   and written to the host's wire form ([`wire`]) by the `cdc-event` crate the host shares.
//! - [`Transform`] and [`Outcome`]: one outcome per event (keep, drop, many, error), exported
//!   with [`export_transform!`].
//! - [`Sink`] and [`SinkError`]: open, write, flush, health, close, exported with
//!   [`export_sink!`].
//! - [`Error`] and [`ErrorClass`]: retryable, poison or fatal, which decides what the host does.
//! - [`Config`] for the plugin's settings, [`PluginInfo`] for its self-description, [`log`] for
//!   the host's log and counters, [`testing`] to run all of it natively in `cargo test`.
//!
//! A filter:
//!
//! ```
//! use cdc_sdk::prelude::*;
//!
//! struct DropTestRows;
//!
//! impl Transform for DropTestRows {
//!     fn configure(_: Config) -> Result<Self, Error> {
//!         Ok(DropTestRows)
//!     }
//!     fn transform(&mut self, event: Event) -> Outcome {
//!         match event.column("status").and_then(Value::as_text) {
//!             Some("test") => Outcome::Drop,
//!             _ => Outcome::Keep(event),
//!         }
//!     }
//! }
//!
//! cdc_sdk::export_transform!(DropTestRows);
//! # let outcomes = cdc_sdk::testing::run_transform::<DropTestRows>(
//! #     json!({}), vec![Event::insert("t", row! {"status" => "test"})]);
//! # assert_eq!(outcomes, [Outcome::Drop]);
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2 --release` (the crate needs
//! `crate-type = ["cdylib", "rlib"]`). The author guide is the SDK's `README.md`.

pub mod config;
pub mod error;
pub mod event;
pub mod log;

/// The plugin author guide (the SDK's `README.md`); its examples run as doc tests.
#[doc = include_str!("../README.md")]
pub mod guide {}
pub mod sink;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod transform;
pub mod wire;

mod glue;

/// What the export macros expand to call; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::glue::*;
}

pub use cdc_event::{ConfigParam, PluginInfo, row};
pub use config::Config;
pub use error::{Error, ErrorClass};
pub use event::{Decimal, Event, Op, Row, TableId, Value};
pub use sink::{Sink, SinkError};
pub use transform::{Outcome, Transform};

/// What a plugin usually needs: `use cdc_sdk::prelude::*;`.
pub mod prelude {
    pub use serde_json::json;

    pub use crate::{
        Config, ConfigParam, Decimal, Error, ErrorClass, Event, Op, Outcome, PluginInfo, Row, Sink,
        SinkError, TableId, Transform, Value, row,
    };
}

/// Exports a [`Transform`] as the component's `transform` world.
///
/// Use it once, in the plugin crate's `lib.rs`. On wasm32 it generates the WIT exports: one
/// instance of the type per component instance, built by `configure`, fed batch by batch. On
/// other targets it only checks that the type implements [`Transform`], so the same crate
/// builds and tests natively.
#[macro_export]
macro_rules! export_transform {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::__private::wasm::transform_world::cdc::plugin::types as __types;
            use $crate::__private::wasm::transform_world::exports::cdc::plugin::transformer as __transformer;

            ::std::thread_local! {
                static __CDC_TRANSFORM: ::std::cell::RefCell<::std::option::Option<$ty>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }

            struct __CdcTransformExport;

            impl __transformer::Guest for __CdcTransformExport {
                fn describe() -> __types::PluginInfo {
                    $crate::__private::wasm::plugin_info($crate::__private::describe(
                        <$ty as $crate::Transform>::describe(),
                        ::std::env!("CARGO_PKG_NAME"),
                        ::std::env!("CARGO_PKG_VERSION"),
                        ::std::env!("CARGO_PKG_DESCRIPTION"),
                    ))
                }

                fn configure(
                    config: ::std::string::String,
                ) -> ::std::result::Result<(), __types::PluginError> {
                    __CDC_TRANSFORM.with_borrow_mut(|slot| {
                        $crate::__private::wasm::result($crate::__private::configure::<$ty>(slot, &config))
                    })
                }

                fn transform(
                    input: __types::Batch,
                ) -> ::std::result::Result<__transformer::Transformed, __types::PluginError> {
                    __CDC_TRANSFORM.with_borrow_mut(|slot| {
                        $crate::__private::wasm::transformed($crate::__private::transform::<$ty>(
                            slot,
                            &input.data,
                            &input.ends,
                        ))
                    })
                }
            }

            $crate::__private::wasm::transform_world::export!(
                __CdcTransformExport with_types_in $crate::__private::wasm::transform_world
            );
        };

        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            fn __cdc_is_transform<T: $crate::Transform>() {}
            let _ = __cdc_is_transform::<$ty>;
        };
    };
}

/// Exports a [`Sink`] as the component's `sink` world.
///
/// Use it once, in the plugin crate's `lib.rs`. On wasm32 it generates the WIT exports: one
/// instance of the type per component instance, built by `open` and dropped by `close`. On
/// other targets it only checks that the type implements [`Sink`].
#[macro_export]
macro_rules! export_sink {
    ($ty:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::__private::wasm::sink_world::exports::cdc::plugin::writer as __writer;
            use $crate::__private::wasm::transform_world::cdc::plugin::types as __types;

            ::std::thread_local! {
                static __CDC_SINK: ::std::cell::RefCell<::std::option::Option<$ty>> =
                    const { ::std::cell::RefCell::new(::std::option::Option::None) };
            }

            struct __CdcSinkExport;

            impl __writer::Guest for __CdcSinkExport {
                fn describe() -> __types::PluginInfo {
                    $crate::__private::wasm::plugin_info($crate::__private::describe(
                        <$ty as $crate::Sink>::describe(),
                        ::std::env!("CARGO_PKG_NAME"),
                        ::std::env!("CARGO_PKG_VERSION"),
                        ::std::env!("CARGO_PKG_DESCRIPTION"),
                    ))
                }

                fn open(config: ::std::string::String) -> ::std::result::Result<(), __types::PluginError> {
                    __CDC_SINK.with_borrow_mut(|slot| {
                        $crate::__private::wasm::result($crate::__private::open::<$ty>(slot, &config))
                    })
                }

                fn write(
                    records: __types::Batch,
                ) -> ::std::result::Result<::std::vec::Vec<__types::RecordError>, __types::PluginError>
                {
                    __CDC_SINK.with_borrow_mut(|slot| {
                        $crate::__private::wasm::written($crate::__private::write::<$ty>(
                            slot,
                            &records.data,
                            &records.ends,
                        ))
                    })
                }

                fn flush(
                    checkpoint: ::std::string::String,
                ) -> ::std::result::Result<(), __types::PluginError> {
                    __CDC_SINK.with_borrow_mut(|slot| {
                        $crate::__private::wasm::result($crate::__private::flush::<$ty>(slot, &checkpoint))
                    })
                }

                fn health() -> ::std::result::Result<(), ::std::string::String> {
                    __CDC_SINK.with_borrow_mut(|slot| $crate::__private::health::<$ty>(slot))
                }

                fn close() {
                    __CDC_SINK.with_borrow_mut(|slot| $crate::__private::close::<$ty>(slot))
                }
            }

            $crate::__private::wasm::sink_world::export!(
                __CdcSinkExport with_types_in $crate::__private::wasm::sink_world
            );
        };

        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            fn __cdc_is_sink<S: $crate::Sink>() {}
            let _ = __cdc_is_sink::<$ty>;
        };
    };
}
