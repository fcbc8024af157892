//! `filter-mask`: a cdc transform plugin written with `cdc-sdk`. It drops change events whose
//! `after` row has a given column equal to a given value, and masks chosen columns in `key`,
//! `before` and `after` (see README.md for the config).

use cdc_sdk::prelude::*;
use serde_json::Value as Json;

/// The mask used when the config has no `mask_with`.
pub const DEFAULT_MASK: &str = "***";

/// Which events to drop: those whose `after` row has `column` equal to `equals`.
#[derive(Debug, Clone, PartialEq)]
pub struct DropWhere {
    pub column: String,
    /// The value as JSON in the wire form (`"test"`, `5`, `{"$decimal": "1.50"}`).
    pub equals: Json,
}

/// A configured filter-mask transform.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterMask {
    pub drop_where: Option<DropWhere>,
    pub mask: Vec<String>,
    pub mask_with: String,
}

impl FilterMask {
    /// One line saying what the plugin will drop and mask.
    pub fn summary(&self) -> String {
        let drop = match &self.drop_where {
            Some(DropWhere { column, equals }) => format!("dropping events whose after.{column} == {equals}"),
            None => "dropping nothing".to_owned(),
        };
        let mask = if self.mask.is_empty() {
            "masking nothing".to_owned()
        } else {
            format!(
                "masking {} in key/before/after with {}",
                Json::from(self.mask.clone()),
                Json::from(self.mask_with.as_str())
            )
        };
        format!("{drop}; {mask}")
    }

    fn drops(&self, event: &Event) -> bool {
        let Some(DropWhere { column, equals }) = &self.drop_where else { return false };
        let value = event.after.as_ref().and_then(|after| after.get(column));
        value.is_some_and(|value| equal_as_json(value, equals))
    }

    fn mask(&self, event: &mut Event) {
        for row in event.rows_mut() {
            for (column, value) in row.iter_mut() {
                // Null stays null and an unchanged TOAST value stays unsent: neither holds data.
                if self.mask.iter().any(|masked| masked == column)
                    && !value.is_null()
                    && !value.is_unavailable()
                {
                    *value = Value::Text(self.mask_with.clone());
                }
            }
        }
    }
}

/// Whether a column value equals a config value, compared as JSON in the wire form: numbers by
/// value (`5` equals `5.0`), everything else exactly.
fn equal_as_json(value: &Value, expected: &Json) -> bool {
    let mut wire = Vec::new();
    cdc_sdk::wire::write_value(value, &mut wire);
    let Ok(actual) = serde_json::from_slice::<Json>(&wire) else { return false };
    match (&actual, expected) {
        (Json::Number(a), Json::Number(b)) => a.as_f64() == b.as_f64(),
        _ => actual == *expected,
    }
}

fn kind_of(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "an object",
    }
}

fn bad_type(key: &str, expected: &str, got: &Json) -> Error {
    Error::fatal(format!("config key `{key}` must be {expected}, got {}", kind_of(got)))
}

fn parse_drop_where(value: Option<Json>) -> Result<Option<DropWhere>, Error> {
    let entries = match value {
        None | Some(Json::Null) => return Ok(None),
        Some(Json::Object(entries)) => entries,
        Some(other) => return Err(bad_type("drop_where", "an object {\"column\", \"equals\"}", &other)),
    };
    let mut column = None;
    let mut equals = None;
    for (key, value) in entries {
        match key.as_str() {
            "column" => match value {
                Json::String(name) if !name.is_empty() => column = Some(name),
                Json::String(_) => {
                    return Err(Error::fatal("config key `drop_where.column` must not be empty"));
                }
                other => return Err(bad_type("drop_where.column", "a string", &other)),
            },
            "equals" => equals = Some(value),
            _ => {
                return Err(Error::fatal(format!(
                    "unknown config key `drop_where.{key}` (known: column, equals)"
                )));
            }
        }
    }
    let missing = |key: &str| Error::fatal(format!("config key `drop_where.{key}` is required"));
    Ok(Some(DropWhere {
        column: column.ok_or_else(|| missing("column"))?,
        equals: equals.ok_or_else(|| missing("equals"))?,
    }))
}

fn parse_mask(value: Option<Json>) -> Result<Vec<String>, Error> {
    let items = match value {
        None | Some(Json::Null) => return Ok(Vec::new()),
        Some(Json::Array(items)) => items,
        Some(other) => return Err(bad_type("mask", "a list of column names", &other)),
    };
    let mut columns = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        match item {
            Json::String(name) if !columns.contains(&name) => columns.push(name),
            Json::String(_) => {}
            other => return Err(bad_type(&format!("mask[{i}]"), "a string", &other)),
        }
    }
    Ok(columns)
}

impl Transform for FilterMask {
    /// Every key is optional and `null` means its default; unknown keys and wrong types are
    /// fatal, naming the key.
    fn configure(config: Config) -> Result<Self, Error> {
        config.deny_unknown(&["drop_where", "mask", "mask_with"])?;
        let mask_with = match config.get_opt::<Json>("mask_with")? {
            None | Some(Json::Null) => DEFAULT_MASK.to_owned(),
            Some(Json::String(text)) => text,
            Some(other) => return Err(bad_type("mask_with", "a string", &other)),
        };
        let filter = FilterMask {
            drop_where: parse_drop_where(config.get_opt("drop_where")?)?,
            mask: parse_mask(config.get_opt("mask")?)?,
            mask_with,
        };
        cdc_sdk::log::info(format_args!("filter-mask: {}", filter.summary()));
        Ok(filter)
    }

    fn transform(&mut self, mut event: Event) -> Outcome {
        if self.drops(&event) {
            return Outcome::Drop;
        }
        self.mask(&mut event);
        Outcome::Keep(event)
    }

    fn describe() -> PluginInfo {
        PluginInfo::new()
            .description(
                "Drops change events whose `after` row has a given column value, and replaces the values \
                 of chosen columns in key/before/after with a mask string.",
            )
            .param(ConfigParam::object("drop_where").default_json("null").doc(
                "{\"column\": name, \"equals\": JSON value}: drop events whose `after` row has this column \
                 equal to the value (null or absent: drop nothing).",
            ))
            .param(ConfigParam::list("mask").default_json("[]").doc(
                "Columns whose non-null values are replaced by `mask_with` in key, before and after \
                 (unchanged TOAST values stay as they are).",
            ))
            .param(
                ConfigParam::string("mask_with")
                    .default_json("\"***\"")
                    .doc("The text that replaces a masked value."),
            )
    }
}

cdc_sdk::export_transform!(FilterMask);

#[cfg(test)]
mod tests;
