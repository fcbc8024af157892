//! A mask: replaces the configured columns with `"***"` in key, before and after, leaving nulls
//! and unchanged TOAST columns alone. Config: `{"columns": ["email", "phone"]}`.
//!
//! Build: `cargo build --example mask_columns --target wasm32-wasip2 --release`
//! (-> target/wasm32-wasip2/release/examples/mask_columns.wasm). Test: `cargo test --example mask_columns`.

use cdc_sdk::prelude::*;

struct MaskColumns(Vec<String>);

impl Transform for MaskColumns {
    fn configure(config: Config) -> Result<Self, Error> {
        Ok(MaskColumns(config.get("columns")?))
    }
    fn transform(&mut self, mut event: Event) -> Outcome {
        for (column, value) in event.rows_mut().flat_map(Row::iter_mut) {
            if self.0.iter().any(|c| c == column) && !value.is_null() && !value.is_unavailable() {
                *value = Value::from("***");
            }
        }
        Outcome::Keep(event)
    }
}

cdc_sdk::export_transform!(MaskColumns);

#[cfg(test)]
mod tests {
    use cdc_sdk::prelude::*;
    use cdc_sdk::testing::{configure, run_transform};

    use super::MaskColumns;

    #[test]
    fn masks_values_but_not_nulls_or_unchanged_columns() {
        let event =
            Event::update("public.users", row! {"id" => 1, "email" => "a@b.c", "phone" => Value::Null})
                .with_before(row! {"id" => 1, "email" => Value::Unavailable})
                .with_key(row! {"email" => "a@b.c"});
        let outcomes = run_transform::<MaskColumns>(json!({"columns": ["email", "phone"]}), vec![event]);
        let [Outcome::Keep(masked)] = &outcomes[..] else { panic!("expected one kept event: {outcomes:?}") };
        assert_eq!(masked.after, Some(row! {"id" => 1, "email" => "***", "phone" => Value::Null}));
        assert_eq!(masked.before, Some(row! {"id" => 1, "email" => Value::Unavailable}));
        assert_eq!(masked.key, Some(row! {"email" => "***"}));
    }

    #[test]
    fn columns_are_required() {
        let error = configure::<MaskColumns>(json!({})).err().expect("configure must fail");
        assert_eq!(error, Error::fatal("config key `columns` is required"));
    }
}
