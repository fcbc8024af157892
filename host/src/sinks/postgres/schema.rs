//! Target tables: names, the PostgreSQL type of a source column, the DDL that creates and
//! widens a table from the source schema, and a table's shape as the catalog reports it.

use std::fmt;

use tokio_postgres::Client;

use crate::event::Column;

/// Serialises the sink's DDL across lanes and sinks until the transaction ends: two lanes
/// creating one table at once would otherwise collide in the catalog (`CREATE … IF NOT EXISTS`
/// is not safe against a concurrent create).
pub(super) const DDL_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext('cdc.sink.ddl'))";

/// A schema-qualified table name; displays quoted, ready for SQL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct TableName {
    pub schema: String,
    pub table: String,
}

impl TableName {
    /// Splits `schema.table` (validated by the config).
    pub fn parse(qualified: &str) -> Self {
        let (schema, table) = qualified.split_once('.').unwrap_or(("public", qualified));
        TableName { schema: schema.to_owned(), table: table.to_owned() }
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", quote(&self.schema), quote(&self.table))
    }
}

/// An identifier quoted for SQL: any name is safe, and its case is kept.
pub(super) fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// A column of a target table: its name and its type as `format_type` spells it, without its
/// modifier (`character varying`, not `character varying(20)`). Values are cast to that, and
/// the column's own modifier applies when they are assigned: a string too long for it is then
/// refused (an explicit cast to `varchar(20)` would cut it silently).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TargetColumn {
    pub name: String,
    pub sql_type: String,
}

/// A target table as it stands in the database.
#[derive(Debug, Clone)]
pub(super) struct TargetTable {
    pub name: TableName,
    pub columns: Vec<TargetColumn>,
    /// Primary-key columns, in key order.
    pub key: Vec<String>,
}

impl TargetTable {
    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&TargetColumn> {
        self.columns.iter().find(|column| column.name == name)
    }

    /// Reads the table from the catalog; `None` when it does not exist.
    pub async fn load(client: &Client, name: &TableName) -> Result<Option<Self>, tokio_postgres::Error> {
        const COLUMNS: &str = "SELECT a.attname, format_type(a.atttypid, NULL), \
               array_position(i.indkey::int2[], a.attnum) \
             FROM pg_attribute a \
             LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary \
             WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum";
        let rows = client.query(COLUMNS, &[&name.to_string()]).await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut key: Vec<(i32, String)> = Vec::new();
        let columns = rows
            .iter()
            .map(|row| {
                let name: String = row.get(0);
                if let Some(position) = row.get::<_, Option<i32>>(2) {
                    key.push((position, name.clone()));
                }
                TargetColumn { name, sql_type: row.get(1) }
            })
            .collect();
        key.sort();
        Ok(Some(TargetTable { name: name.clone(), columns, key: key.into_iter().map(|(_, k)| k).collect() }))
    }
}

/// `CREATE TABLE IF NOT EXISTS` for `columns` with `key` as the primary key. Key columns are
/// `NOT NULL` (the key requires it); every other column is nullable, so that a row whose
/// unchanged TOAST values the source did not send can still be written.
pub(super) fn create_table(name: &TableName, columns: &[Column], key: &[String]) -> Result<String, String> {
    let mut definitions = Vec::with_capacity(columns.len() + 1);
    for column in columns {
        definitions.push(format!("{} {}", quote(&column.name), column_type(column)?));
    }
    let key: Vec<String> = key.iter().map(|column| quote(column)).collect();
    definitions.push(format!("PRIMARY KEY ({})", key.join(", ")));
    Ok(format!("CREATE TABLE IF NOT EXISTS {name} ({})", definitions.join(", ")))
}

/// `ALTER TABLE … ADD COLUMN IF NOT EXISTS`: a column the source gained, nullable (old rows
/// have no value for it).
pub(super) fn add_column(name: &TableName, column: &Column) -> Result<String, String> {
    Ok(format!(
        "ALTER TABLE {name} ADD COLUMN IF NOT EXISTS {} {}",
        quote(&column.name),
        column_type(column)?
    ))
}

/// The PostgreSQL type for a source column: its Debezium logical type first, then its Connect
/// type; the source database's own type refines text and JSON where the connector tells it.
/// A type with no faithful PostgreSQL form is an error naming it.
pub(super) fn column_type(column: &Column) -> Result<String, String> {
    let source_type = column.source_type.as_deref().map(str::to_ascii_uppercase);
    if let Some(logical) = column.logical_type.as_deref() {
        let mapped = match logical {
            "org.apache.kafka.connect.data.Decimal" => Some(match (column.precision, column.scale) {
                (Some(precision), Some(scale)) if precision > 0 => format!("numeric({precision}, {scale})"),
                _ => "numeric".to_owned(),
            }),
            "io.debezium.data.VariableScaleDecimal" => Some("numeric".to_owned()),
            "io.debezium.time.Date" | "org.apache.kafka.connect.data.Date" => Some("date".to_owned()),
            "io.debezium.time.Time"
            | "io.debezium.time.MicroTime"
            | "io.debezium.time.NanoTime"
            | "org.apache.kafka.connect.data.Time" => Some("time".to_owned()),
            "io.debezium.time.Timestamp"
            | "io.debezium.time.MicroTimestamp"
            | "io.debezium.time.NanoTimestamp"
            | "org.apache.kafka.connect.data.Timestamp" => Some("timestamp".to_owned()),
            "io.debezium.time.ZonedTimestamp" => Some("timestamptz".to_owned()),
            "io.debezium.data.Json" => {
                Some(if source_type.as_deref() == Some("JSON") { "json" } else { "jsonb" }.to_owned())
            }
            "io.debezium.data.Uuid" => Some("uuid".to_owned()),
            "io.debezium.data.Enum" | "io.debezium.data.Xml" => Some("text".to_owned()),
            // Other logical types keep the representation of their Connect type.
            _ => None,
        };
        if let Some(mapped) = mapped {
            return Ok(mapped);
        }
    }
    if column.connect_type == "string"
        && let (Some(source_type), Some(length)) = (source_type.as_deref(), column.source_length)
        && length > 0
    {
        match source_type {
            "VARCHAR" => return Ok(format!("varchar({length})")),
            "BPCHAR" | "CHAR" => return Ok(format!("char({length})")),
            _ => {}
        }
    }
    if column.connect_type == "array" {
        let items = column.items.as_deref().unwrap_or("string");
        return scalar_type(items)
            .map(|element| format!("{element}[]"))
            .ok_or_else(|| format!("column `{}`: arrays of {items} have no PostgreSQL type", column.name));
    }
    scalar_type(&column.connect_type).map(str::to_owned).ok_or_else(|| {
        let logical = column.logical_type.as_deref().map(|l| format!(" ({l})")).unwrap_or_default();
        format!("column `{}`: type {}{logical} has no PostgreSQL type", column.name, column.connect_type)
    })
}

fn scalar_type(connect_type: &str) -> Option<&'static str> {
    Some(match connect_type {
        "int8" | "int16" => "smallint",
        "int32" => "integer",
        "int64" => "bigint",
        "float32" => "real",
        "float64" => "double precision",
        "boolean" => "boolean",
        "string" => "text",
        "bytes" => "bytea",
        _ => return None,
    })
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

    #[test]
    fn types_follow_the_logical_type_then_the_connect_type() {
        let decimal = Column {
            precision: Some(12),
            scale: Some(3),
            ..column("n", "bytes", Some("org.apache.kafka.connect.data.Decimal"))
        };
        let json = Column {
            source_type: Some("JSON".into()),
            ..column("j", "string", Some("io.debezium.data.Json"))
        };
        let varchar = Column {
            source_type: Some("VARCHAR".into()),
            source_length: Some(40),
            ..column("v", "string", None)
        };
        let array = Column { items: Some("int32".into()), ..column("a", "array", None) };
        let cases = [
            (decimal, "numeric(12, 3)"),
            (column("v", "struct", Some("io.debezium.data.VariableScaleDecimal")), "numeric"),
            (column("ts", "int64", Some("io.debezium.time.MicroTimestamp")), "timestamp"),
            (column("tz", "string", Some("io.debezium.time.ZonedTimestamp")), "timestamptz"),
            (column("d", "int32", Some("io.debezium.time.Date")), "date"),
            (column("t", "int64", Some("io.debezium.time.MicroTime")), "time"),
            (json, "json"),
            (column("jb", "string", Some("io.debezium.data.Json")), "jsonb"),
            (column("u", "string", Some("io.debezium.data.Uuid")), "uuid"),
            (varchar, "varchar(40)"),
            (array, "integer[]"),
            (column("b", "boolean", None), "boolean"),
            (column("by", "bytes", None), "bytea"),
            (column("f", "float64", None), "double precision"),
            (column("s", "int16", None), "smallint"),
            (column("x", "string", Some("io.debezium.data.Bits.Unknown")), "text"),
        ];
        for (column, expected) in cases {
            assert_eq!(column_type(&column).as_deref(), Ok(expected), "{column:?}");
        }
    }

    #[test]
    fn a_type_without_a_postgres_form_is_an_error_naming_the_column() {
        let geometry = column("shape", "struct", Some("io.debezium.data.geometry.Geometry"));
        assert_eq!(
            column_type(&geometry).unwrap_err(),
            "column `shape`: type struct (io.debezium.data.geometry.Geometry) has no PostgreSQL type"
        );
    }

    #[test]
    fn ddl_quotes_every_identifier() {
        let name = TableName::parse("my schema.Odd\"Name");
        let columns = [column("id", "int32", None), column("Note", "string", None)];
        let sql = create_table(&name, &columns, &["id".into()]).unwrap();
        assert_eq!(
            sql,
            r#"CREATE TABLE IF NOT EXISTS "my schema"."Odd""Name" ("id" integer, "Note" text, PRIMARY KEY ("id"))"#
        );
        assert_eq!(
            add_column(&name, &columns[1]).unwrap(),
            r#"ALTER TABLE "my schema"."Odd""Name" ADD COLUMN IF NOT EXISTS "Note" text"#
        );
    }
}
