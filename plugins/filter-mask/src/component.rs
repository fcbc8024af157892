//! The WIT glue: converts between the generated bindings and [`crate::logic`].

use std::cell::RefCell;

use crate::logic::{self, Config, Filter};

wit_bindgen::generate!({ path: "../../wit", world: "transform" });

use cdc::plugin::host::{self, Level};
use cdc::plugin::types::{Batch, ConfigParam, ErrorClass, PluginError, PluginInfo, RecordError};
use exports::cdc::plugin::transformer::{Guest, Transformed};

thread_local! {
    /// The configured filter; one instance per component instance (wasm is single-threaded).
    static FILTER: RefCell<Option<Filter>> = const { RefCell::new(None) };
}

struct Component;

fn plugin_error(error: logic::Error) -> PluginError {
    let class = match error.class {
        logic::ErrorClass::Retryable => ErrorClass::Retryable,
        logic::ErrorClass::Poison => ErrorClass::Poison,
        logic::ErrorClass::Fatal => ErrorClass::Fatal,
    };
    PluginError { class, message: error.message }
}

impl Guest for Component {
    fn describe() -> PluginInfo {
        let info = logic::describe();
        PluginInfo {
            name: info.name.into(),
            version: info.version.into(),
            description: info.description.into(),
            config: info
                .config
                .into_iter()
                .map(|p| ConfigParam {
                    name: p.name.into(),
                    kind: p.kind.into(),
                    required: p.required,
                    default_value: p.default_value.map(Into::into),
                    secret: p.secret,
                    description: p.description.into(),
                })
                .collect(),
            capabilities: info.capabilities.into_iter().map(Into::into).collect(),
        }
    }

    fn configure(config: String) -> Result<(), PluginError> {
        let config = Config::parse(&config).map_err(plugin_error)?;
        host::log(Level::Info, &config.summary());
        FILTER.with_borrow_mut(|slot| *slot = Some(Filter::new(config)));
        Ok(())
    }

    fn transform(input: Batch) -> Result<Transformed, PluginError> {
        FILTER.with_borrow(|filter| {
            let filter = filter.as_ref().ok_or_else(|| PluginError {
                class: ErrorClass::Fatal,
                message: "transform called before configure".into(),
            })?;
            let out = filter.transform(&input.data, &input.ends).map_err(plugin_error)?;
            Ok(Transformed {
                records: Batch { data: out.data, ends: out.ends },
                origins: out.origins,
                errors: out
                    .errors
                    .into_iter()
                    .map(|e| RecordError { index: e.index, error: plugin_error(e.error) })
                    .collect(),
            })
        })
    }
}

export!(Component);
