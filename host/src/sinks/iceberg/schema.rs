//! Iceberg tables from the source schema: the Iceberg type of a source column, the schema of a
//! new table (the source columns, then the CDC columns), and how a table's schema follows the
//! source when it gains a column or widens one. Types come from the schema the source declares
//! (Debezium's Connect schema or Avro), never from values.

use std::sync::Arc;

use iceberg::spec::{ListType, NestedField, NestedFieldRef, PrimitiveType, Schema, Type};

use crate::config::WriteMode;
use crate::event::Column;

/// The change's operation (`c`, `u`, `d`, `r`, `t`).
pub(super) const CDC_OP: &str = "_cdc_op";
/// When the change was committed at the source.
pub(super) const CDC_COMMIT_TS: &str = "_cdc_commit_ts";
/// The change's position in its source (its idempotency id).
pub(super) const CDC_POSITION: &str = "_cdc_position";

/// Iceberg's largest decimal precision.
const MAX_DECIMAL_PRECISION: u32 = 38;

/// The Iceberg type of a source column: its Debezium logical type first, then its Connect type.
/// A type with no faithful Iceberg form is an error naming the column.
pub(super) fn column_type(column: &Column) -> Result<Type, String> {
    if let Some(logical) = column.logical_type.as_deref()
        && let Some(mapped) = logical_type(column, logical)?
    {
        return Ok(Type::Primitive(mapped));
    }
    if column.connect_type == "array" {
        let items = column.items.as_deref().unwrap_or("string");
        let element = scalar_type(items)
            .ok_or_else(|| format!("column `{}`: arrays of {items} have no Iceberg type", column.name))?;
        // The element's field id is assigned when the schema is built.
        let element = NestedField::list_element(0, Type::Primitive(element), false);
        return Ok(Type::List(ListType { element_field: Arc::new(element) }));
    }
    scalar_type(&column.connect_type).map(Type::Primitive).ok_or_else(|| {
        let logical = column.logical_type.as_deref().map(|l| format!(" ({l})")).unwrap_or_default();
        format!("column `{}`: type {}{logical} has no Iceberg type", column.name, column.connect_type)
    })
}

fn logical_type(column: &Column, logical: &str) -> Result<Option<PrimitiveType>, String> {
    Ok(Some(match logical {
        "org.apache.kafka.connect.data.Decimal" => {
            let scale = column.scale.unwrap_or(0);
            let precision = column.precision.filter(|p| *p > 0).unwrap_or(MAX_DECIMAL_PRECISION);
            if precision > MAX_DECIMAL_PRECISION || scale > precision {
                return Err(format!(
                    "column `{}`: decimal({precision}, {scale}) does not fit Iceberg's decimals \
                     (at most 38 digits)",
                    column.name
                ));
            }
            PrimitiveType::Decimal { precision, scale }
        }
        // A numeric without a declared scale: each value has its own, which no Iceberg
        // decimal holds exactly; its exact text does.
        "io.debezium.data.VariableScaleDecimal" => PrimitiveType::String,
        "io.debezium.time.Date" | "org.apache.kafka.connect.data.Date" => PrimitiveType::Date,
        "io.debezium.time.Time"
        | "io.debezium.time.MicroTime"
        | "io.debezium.time.NanoTime"
        | "org.apache.kafka.connect.data.Time" => PrimitiveType::Time,
        "io.debezium.time.Timestamp"
        | "io.debezium.time.MicroTimestamp"
        | "io.debezium.time.NanoTimestamp"
        | "org.apache.kafka.connect.data.Timestamp" => PrimitiveType::Timestamp,
        "io.debezium.time.ZonedTimestamp" => PrimitiveType::Timestamptz,
        "io.debezium.data.Uuid" => PrimitiveType::Uuid,
        "io.debezium.data.Json" | "io.debezium.data.Enum" | "io.debezium.data.Xml" => PrimitiveType::String,
        // Other logical types keep the representation of their Connect type.
        _ => return Ok(None),
    }))
}

fn scalar_type(connect_type: &str) -> Option<PrimitiveType> {
    Some(match connect_type {
        "int8" | "int16" | "int32" => PrimitiveType::Int,
        "int64" => PrimitiveType::Long,
        "float32" => PrimitiveType::Float,
        "float64" => PrimitiveType::Double,
        "boolean" => PrimitiveType::Boolean,
        "string" => PrimitiveType::String,
        "bytes" => PrimitiveType::Binary,
        _ => return None,
    })
}

/// The schema of a new table for a source table: its columns in source order, then the CDC
/// columns. In upsert mode the key columns are required and are the table's identifier fields
/// (what equality deletes match on); in append mode a key has many rows, so there are none.
pub(super) fn table_schema(columns: &[Column], key: &[String], mode: WriteMode) -> Result<Schema, String> {
    let mut next_id = 1;
    let mut fields = Vec::with_capacity(columns.len() + 3);
    let mut identifiers = Vec::with_capacity(key.len());
    for column in columns {
        let is_key = mode == WriteMode::Upsert && key.contains(&column.name);
        let field = field(&mut next_id, &column.name, column_type(column)?, is_key);
        if is_key {
            identifiers.push(field.id);
        }
        fields.push(field);
    }
    if let Some(missing) = key.iter().find(|k| !columns.iter().any(|c| &c.name == *k)) {
        return Err(format!("key column `{missing}` is not a column of the table"));
    }
    for (name, ty, required) in cdc_columns() {
        fields.push(field(&mut next_id, name, Type::Primitive(ty), required));
    }
    Schema::builder()
        .with_schema_id(0)
        .with_fields(fields)
        .with_identifier_field_ids(identifiers)
        .build()
        .map_err(|error| format!("cannot build the table schema: {error}"))
}

fn cdc_columns() -> [(&'static str, PrimitiveType, bool); 3] {
    [
        (CDC_OP, PrimitiveType::String, true),
        (CDC_COMMIT_TS, PrimitiveType::Timestamptz, false),
        (CDC_POSITION, PrimitiveType::String, true),
    ]
}

/// A field with ids from `next_id` (a list's element takes the id after its own).
fn field(next_id: &mut i32, name: &str, ty: Type, required: bool) -> NestedFieldRef {
    let id = *next_id;
    *next_id += 1;
    let ty = match ty {
        Type::List(list) => {
            let element_id = *next_id;
            *next_id += 1;
            let element = NestedField::list_element(
                element_id,
                (*list.element_field.field_type).clone(),
                list.element_field.required,
            );
            Type::List(ListType { element_field: Arc::new(element) })
        }
        ty => ty,
    };
    let field =
        if required { NestedField::required(id, name, ty) } else { NestedField::optional(id, name, ty) };
    Arc::new(field)
}

/// How a table's schema must change to take the source's columns: columns the source gained
/// are added (optional: old rows have none), widened types are widened. `None` when the table
/// already takes them all. A change Iceberg cannot apply (a narrower or different type) is an
/// error naming the column.
pub(super) fn evolve(table: &Schema, columns: &[Column]) -> Result<Option<Schema>, String> {
    let mut fields: Vec<NestedFieldRef> = table.as_struct().fields().to_vec();
    let mut next_id = table.highest_field_id() + 1;
    let mut changed = false;
    for column in columns {
        let wanted = column_type(column)?;
        match fields.iter_mut().find(|field| field.name == column.name) {
            None => {
                fields.push(field(&mut next_id, &column.name, wanted, false));
                changed = true;
            }
            Some(existing) => match widened(&existing.field_type, &wanted) {
                Widening::Same => {}
                Widening::To(ty) => {
                    let mut field = (**existing).clone();
                    field.field_type = Box::new(Type::Primitive(ty));
                    *existing = Arc::new(field);
                    changed = true;
                }
                Widening::Incompatible => {
                    return Err(format!(
                        "column `{}` changed from {} to {wanted}, which Iceberg cannot apply to the table",
                        column.name, existing.field_type
                    ));
                }
            },
        }
    }
    if !changed {
        return Ok(None);
    }
    Schema::builder()
        .with_schema_id(table.schema_id() + 1)
        .with_fields(fields)
        .with_identifier_field_ids(table.identifier_field_ids())
        .build()
        .map(Some)
        .map_err(|error| format!("cannot build the evolved schema: {error}"))
}

enum Widening {
    Same,
    To(PrimitiveType),
    Incompatible,
}

/// Whether a column of type `table` can take values of the source's type `source`: the same
/// type, a type Iceberg widens to (int → long, float → double, a decimal's precision), or a
/// narrower source type the table's values already hold.
fn widened(table: &Type, source: &Type) -> Widening {
    use PrimitiveType::{Decimal, Double, Float, Int, Long};
    let (Type::Primitive(table), Type::Primitive(source)) = (table, source) else {
        return match (table, source) {
            (Type::List(a), Type::List(b)) if a.element_field.field_type == b.element_field.field_type => {
                Widening::Same
            }
            _ => Widening::Incompatible,
        };
    };
    match (table, source) {
        (a, b) if a == b => Widening::Same,
        (Int, Long) => Widening::To(Long),
        (Float, Double) => Widening::To(Double),
        // The table is already wider than the source: its values fit.
        (Long, Int) | (Double, Float) => Widening::Same,
        (Decimal { precision: p, scale: s }, Decimal { precision: q, scale: t }) if s == t => {
            if q > p {
                Widening::To(Decimal { precision: *q, scale: *s })
            } else {
                Widening::Same
            }
        }
        _ => Widening::Incompatible,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, connect: &str, logical: Option<&str>) -> Column {
        Column {
            name: name.into(),
            connect_type: connect.into(),
            logical_type: logical.map(str::to_owned),
            optional: true,
            ..Column::default()
        }
    }

    fn primitive(ty: PrimitiveType) -> Type {
        Type::Primitive(ty)
    }

    #[test]
    fn types_follow_the_logical_type_then_the_connect_type() {
        let decimal = Column {
            precision: Some(12),
            scale: Some(3),
            ..column("n", "bytes", Some("org.apache.kafka.connect.data.Decimal"))
        };
        let cases = [
            (decimal, primitive(PrimitiveType::Decimal { precision: 12, scale: 3 })),
            (
                column("v", "struct", Some("io.debezium.data.VariableScaleDecimal")),
                primitive(PrimitiveType::String),
            ),
            (column("d", "int32", Some("io.debezium.time.Date")), primitive(PrimitiveType::Date)),
            (column("t", "int64", Some("io.debezium.time.MicroTime")), primitive(PrimitiveType::Time)),
            (
                column("ts", "int64", Some("io.debezium.time.MicroTimestamp")),
                primitive(PrimitiveType::Timestamp),
            ),
            (
                column("tz", "string", Some("io.debezium.time.ZonedTimestamp")),
                primitive(PrimitiveType::Timestamptz),
            ),
            (column("u", "string", Some("io.debezium.data.Uuid")), primitive(PrimitiveType::Uuid)),
            (column("j", "string", Some("io.debezium.data.Json")), primitive(PrimitiveType::String)),
            (column("s", "int16", None), primitive(PrimitiveType::Int)),
            (column("l", "int64", None), primitive(PrimitiveType::Long)),
            (column("f", "float32", None), primitive(PrimitiveType::Float)),
            (column("b", "bytes", None), primitive(PrimitiveType::Binary)),
        ];
        for (column, expected) in cases {
            assert_eq!(column_type(&column).unwrap(), expected, "{}", column.name);
        }
        let array = Column { items: Some("int32".into()), ..column("a", "array", None) };
        let Type::List(list) = column_type(&array).unwrap() else { panic!("not a list") };
        assert_eq!(*list.element_field.field_type, primitive(PrimitiveType::Int));
    }

    #[test]
    fn a_type_iceberg_cannot_hold_names_the_column() {
        let wide = Column {
            precision: Some(50),
            scale: Some(2),
            ..column("amount", "bytes", Some("org.apache.kafka.connect.data.Decimal"))
        };
        let error = column_type(&wide).unwrap_err();
        assert!(error.contains("`amount`") && error.contains("decimal(50, 2)"), "{error}");
        let error = column_type(&column("m", "map", None)).unwrap_err();
        assert!(error.contains("`m`") && error.contains("map"), "{error}");
    }

    #[test]
    fn upsert_tables_have_the_key_as_identifier_fields_and_cdc_columns_last() {
        let columns =
            [column("id", "int32", None), column("tags", "array", None), column("name", "string", None)];
        let schema = table_schema(&columns, &["id".into()], WriteMode::Upsert).unwrap();
        let names: Vec<&str> = schema.as_struct().fields().iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["id", "tags", "name", CDC_OP, CDC_COMMIT_TS, CDC_POSITION]);
        let id = schema.field_by_name("id").unwrap();
        assert!(id.required);
        assert_eq!(schema.identifier_field_ids().collect::<Vec<_>>(), [id.id]);
        // The list's element has an id of its own, distinct from every column's.
        let Type::List(list) = &*schema.field_by_name("tags").unwrap().field_type else { panic!() };
        assert!(schema.as_struct().fields().iter().all(|f| f.id != list.element_field.id));

        let append = table_schema(&columns, &["id".into()], WriteMode::Append).unwrap();
        assert_eq!(append.identifier_field_ids().count(), 0);
        assert!(!append.field_by_name("id").unwrap().required);

        let error = table_schema(&columns, &["missing".into()], WriteMode::Upsert).unwrap_err();
        assert!(error.contains("`missing`"), "{error}");
    }

    #[test]
    fn evolution_adds_columns_widens_types_and_refuses_the_rest() {
        let columns = [column("id", "int32", None), column("price", "float32", None)];
        let table = table_schema(&columns, &["id".into()], WriteMode::Upsert).unwrap();
        assert!(evolve(&table, &columns).unwrap().is_none());

        let grown =
            [column("id", "int64", None), column("price", "float64", None), column("note", "string", None)];
        let evolved = evolve(&table, &grown).unwrap().expect("a change");
        assert_eq!(*evolved.field_by_name("id").unwrap().field_type, primitive(PrimitiveType::Long));
        assert_eq!(*evolved.field_by_name("price").unwrap().field_type, primitive(PrimitiveType::Double));
        let note = evolved.field_by_name("note").unwrap();
        assert!(!note.required);
        assert_eq!(note.id, table.highest_field_id() + 1);
        assert_eq!(
            evolved.identifier_field_ids().collect::<Vec<_>>(),
            table.identifier_field_ids().collect::<Vec<_>>()
        );

        // A source that narrows back still fits the wider table.
        assert!(evolve(&evolved, &columns).unwrap().is_none());

        let changed = [column("id", "string", None)];
        let error = evolve(&table, &changed).unwrap_err();
        assert!(error.contains("`id`"), "{error}");
    }
}
