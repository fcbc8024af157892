//! The WIT bindings (generated from `../wit/`: the repository's WIT package, or the copy that
//! `cdc plugin new` puts beside the SDK) and the conversions between them and the SDK's types.
//! wasm32 only.
//!
//! The export macros are generated with `pub_export_macro`, so the world's exports are embedded
//! only in the plugin crate that invokes them: a transform plugin does not claim to export the
//! sink interface, and the other way round.

// The generated bindings are unsafe FFI by nature.
#![allow(unsafe_code, missing_docs)]

use crate::{ConfigParam, Error, ErrorClass, PluginInfo};

/// Bindings of the `transform` world, and of the `types` and `host` interfaces for both worlds.
pub mod transform_world {
    wit_bindgen::generate!({
        path: "../wit",
        world: "transform",
        pub_export_macro: true,
        export_macro_name: "export",
    });
}

/// Bindings of the `sink` world; shared interfaces come from [`transform_world`].
pub mod sink_world {
    wit_bindgen::generate!({
        path: "../wit",
        world: "sink",
        pub_export_macro: true,
        export_macro_name: "export",
        with: {
            "cdc:plugin/types@0.1.0": crate::glue::wasm::transform_world::cdc::plugin::types,
            "cdc:plugin/host@0.1.0": crate::glue::wasm::transform_world::cdc::plugin::host,
        },
    });
}

pub use transform_world::cdc::plugin::host;
use transform_world::cdc::plugin::types;
use transform_world::exports::cdc::plugin::transformer;

/// A plugin error in WIT form.
pub fn plugin_error(error: Error) -> types::PluginError {
    let class = match error.class {
        ErrorClass::Retryable => types::ErrorClass::Retryable,
        ErrorClass::Poison => types::ErrorClass::Poison,
        ErrorClass::Fatal => types::ErrorClass::Fatal,
    };
    types::PluginError { class, message: error.message }
}

/// A result in WIT form.
pub fn result(result: Result<(), Error>) -> Result<(), types::PluginError> {
    result.map_err(plugin_error)
}

fn record_errors(errors: Vec<(u32, Error)>) -> Vec<types::RecordError> {
    errors
        .into_iter()
        .map(|(index, error)| types::RecordError { index, error: plugin_error(error) })
        .collect()
}

/// A transform's output in WIT form.
pub fn transformed(
    output: Result<super::Transformed, Error>,
) -> Result<transformer::Transformed, types::PluginError> {
    let output = output.map_err(plugin_error)?;
    Ok(transformer::Transformed {
        records: types::Batch { data: output.records.data, ends: output.records.ends },
        origins: output.origins,
        errors: record_errors(output.errors),
    })
}

/// A sink write's result in WIT form.
pub fn written(
    output: Result<Vec<(u32, Error)>, Error>,
) -> Result<Vec<types::RecordError>, types::PluginError> {
    output.map(record_errors).map_err(plugin_error)
}

/// A description in WIT form.
pub fn plugin_info(info: PluginInfo) -> types::PluginInfo {
    let param = |param: ConfigParam| types::ConfigParam {
        name: param.name,
        kind: param.kind,
        required: param.required,
        default_value: param.default_value,
        secret: param.secret,
        description: param.description,
    };
    types::PluginInfo {
        name: info.name,
        version: info.version,
        description: info.description,
        config: info.config.into_iter().map(param).collect(),
        capabilities: info.capabilities,
    }
}
