//! {{name}}: a cdc transform plugin.
//!
//! Drops change events whose `column` holds the text `value` (by default, rows with
//! `status = "test"`) and keeps the rest unchanged. Replace the logic in `transform`.
//!
//! Build: `cargo build --target wasm32-wasip2 --release`
//! (-> target/wasm32-wasip2/release/{{crate_name}}.wasm). Test: `cargo test`.

use cdc_sdk::prelude::*;

/// The configured transform; one instance per pipeline lane.
pub struct Plugin {
    column: String,
    value: String,
}

impl Transform for Plugin {
    fn configure(config: Config) -> Result<Self, Error> {
        config.deny_unknown(&["column", "value"])?;
        let plugin = Plugin {
            column: config.get_or("column", "status".to_owned())?,
            value: config.get_or("value", "test".to_owned())?,
        };
        cdc_sdk::log::info(format_args!("dropping rows where {} = {:?}", plugin.column, plugin.value));
        Ok(plugin)
    }

    fn transform(&mut self, event: Event) -> Outcome {
        match event.column(&self.column) {
            Some(Value::Text(text)) if *text == self.value => Outcome::Drop,
            _ => Outcome::Keep(event),
        }
    }

    fn describe() -> PluginInfo {
        PluginInfo::new()
            .param(ConfigParam::string("column").default_json("\"status\"").doc("The column to look at"))
            .param(ConfigParam::string("value").default_json("\"test\"").doc("Rows holding it are dropped"))
    }
}

cdc_sdk::export_transform!(Plugin);
