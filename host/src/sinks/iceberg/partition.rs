//! Partitioned tables: the partition spec `partition_by` asks for (`day(updated_at)`,
//! `bucket(16, id)`, `truncate(4, name)`, `year|month|hour(column)`, `identity(column)` or a
//! bare column), and record batches split by partition for the writers. In upsert mode every
//! partition column must be a key column: an equality delete then lands in the partition of
//! the row it removes.

use arrow_array::RecordBatch;
use iceberg::arrow::RecordBatchPartitionSplitter;
use iceberg::spec::{PartitionKey, Schema, Transform, UnboundPartitionSpec};
use iceberg::table::Table;

use crate::config::WriteMode;

/// One field of `partition_by`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PartitionField {
    /// The source column.
    pub column: String,
    /// How its values map to partitions.
    pub transform: Transform,
}

impl PartitionField {
    /// The partition field's name: the column, and the transform unless it is the identity.
    fn name(&self) -> String {
        match self.transform {
            Transform::Identity => self.column.clone(),
            Transform::Bucket(n) => format!("{}_bucket_{n}", self.column),
            Transform::Truncate(n) => format!("{}_trunc_{n}", self.column),
            Transform::Year => format!("{}_year", self.column),
            Transform::Month => format!("{}_month", self.column),
            Transform::Day => format!("{}_day", self.column),
            Transform::Hour => format!("{}_hour", self.column),
            Transform::Void | Transform::Unknown => format!("{}_void", self.column),
        }
    }
}

/// Parses `partition_by`; an entry it cannot read is an error quoting it.
pub(super) fn parse_all(entries: &[String]) -> Result<Vec<PartitionField>, String> {
    entries.iter().map(|entry| parse(entry)).collect()
}

fn parse(entry: &str) -> Result<PartitionField, String> {
    let invalid = || {
        format!(
            "partition_by `{entry}`: expected `column`, `identity|year|month|day|hour(column)`, \
             `bucket(N, column)` or `truncate(N, column)`"
        )
    };
    let entry = entry.trim();
    let Some((function, rest)) = entry.split_once('(') else {
        return column_name(entry)
            .map(|column| PartitionField { column, transform: Transform::Identity })
            .ok_or_else(invalid);
    };
    let arguments = rest.strip_suffix(')').ok_or_else(invalid)?;
    let arguments: Vec<&str> = arguments.split(',').map(str::trim).collect();
    let width = |text: &str| text.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(invalid);
    let (transform, column) = match (function.trim().to_ascii_lowercase().as_str(), arguments.as_slice()) {
        ("identity", [column]) => (Transform::Identity, *column),
        ("year" | "years", [column]) => (Transform::Year, *column),
        ("month" | "months", [column]) => (Transform::Month, *column),
        ("day" | "days", [column]) => (Transform::Day, *column),
        ("hour" | "hours", [column]) => (Transform::Hour, *column),
        ("bucket", [n, column]) => (Transform::Bucket(width(n)?), *column),
        ("truncate", [n, column]) => (Transform::Truncate(width(n)?), *column),
        _ => return Err(invalid()),
    };
    let column = column_name(column).ok_or_else(invalid)?;
    Ok(PartitionField { column, transform })
}

fn column_name(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty() && !text.contains(['(', ')', ',', ' '])).then(|| text.to_owned())
}

/// The partition spec of a new table with `schema`. A column the table lacks, or in upsert
/// mode a column outside the key, is an error naming it.
pub(super) fn spec(
    fields: &[PartitionField],
    schema: &Schema,
    key: &[String],
    mode: WriteMode,
) -> Result<Option<UnboundPartitionSpec>, String> {
    if fields.is_empty() {
        return Ok(None);
    }
    let mut builder = UnboundPartitionSpec::builder();
    for field in fields {
        let source = schema
            .field_by_name(&field.column)
            .ok_or_else(|| format!("partition_by: the table has no column `{}`", field.column))?;
        if mode == WriteMode::Upsert && !key.contains(&field.column) {
            return Err(format!(
                "partition_by: `{}` is not a key column; upsert tables are partitioned by key columns only \
                 (so that a delete finds the row's partition)",
                field.column
            ));
        }
        builder = builder
            .add_partition_field(source.id, field.name(), field.transform)
            .map_err(|error| format!("partition_by `{}`: {}", field.column, super::describe(&error)))?;
    }
    Ok(Some(builder.build()))
}

/// `batch` (in the table's full layout) split by the table's partition spec; one part with no
/// key for an unpartitioned table.
pub(super) fn split(
    table: &Table,
    batch: RecordBatch,
) -> iceberg::Result<Vec<(Option<PartitionKey>, RecordBatch)>> {
    let metadata = table.metadata();
    let spec = metadata.default_partition_spec();
    if spec.is_unpartitioned() {
        return Ok(vec![(None, batch)]);
    }
    let splitter = RecordBatchPartitionSplitter::try_new_with_computed_values(
        metadata.current_schema().clone(),
        spec.clone(),
    )?;
    Ok(splitter.split(&batch)?.into_iter().map(|(key, part)| (Some(key), part)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_fields_are_read_as_iceberg_writes_them() {
        let cases = [
            ("day(updated_at)", "updated_at", Transform::Day, "updated_at_day"),
            ("bucket(16, id)", "id", Transform::Bucket(16), "id_bucket_16"),
            ("truncate(4,name)", "name", Transform::Truncate(4), "name_trunc_4"),
            ("region", "region", Transform::Identity, "region"),
            ("MONTH(created)", "created", Transform::Month, "created_month"),
        ];
        for (entry, column, transform, name) in cases {
            let field = parse(entry).unwrap();
            assert_eq!(
                (field.column.as_str(), field.transform, field.name()),
                (column, transform, name.to_owned())
            );
        }
        for bad in ["bucket(id)", "bucket(0, id)", "day(a, b)", "week(x)", "", "day(x"] {
            let error = parse(bad).unwrap_err();
            assert!(error.contains(&format!("`{bad}`")), "{error}");
        }
    }
}
