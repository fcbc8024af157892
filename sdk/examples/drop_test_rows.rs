//! A filter: drops change events whose row has `status == "test"`.
//!
//! Build: `cargo build --example drop_test_rows --target wasm32-wasip2 --release`
//! (-> target/wasm32-wasip2/release/examples/drop_test_rows.wasm). Test: `cargo test --example drop_test_rows`.

use cdc_sdk::prelude::*;

struct DropTestRows;

impl Transform for DropTestRows {
    fn configure(_: Config) -> Result<Self, Error> {
        Ok(DropTestRows)
    }
    fn transform(&mut self, event: Event) -> Outcome {
        match event.column("status").and_then(Value::as_text) {
            Some("test") => Outcome::Drop,
            _ => Outcome::Keep(event),
        }
    }
}

cdc_sdk::export_transform!(DropTestRows);

#[cfg(test)]
mod tests {
    use cdc_sdk::prelude::*;
    use cdc_sdk::testing::run_transform;

    use super::DropTestRows;

    #[test]
    fn drops_test_rows_and_keeps_the_rest() {
        let test = Event::insert("public.orders", row! {"id" => 1, "status" => "test"});
        let live = Event::insert("public.orders", row! {"id" => 2, "status" => "live"});
        let deleted = Event::delete("public.orders", row! {"id" => 3, "status" => "test"});
        let outcomes = run_transform::<DropTestRows>(json!({}), vec![test, live.clone(), deleted]);
        assert_eq!(outcomes, [Outcome::Drop, Outcome::Keep(live), Outcome::Drop]);
    }
}
