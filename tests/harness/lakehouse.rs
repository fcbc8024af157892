//! Iceberg sinks in a test's own directory (an SQLite catalog and a local warehouse), and their
//! tables read back by independent readers: DuckDB with its Iceberg extension (which applies
//! equality deletes) and pyiceberg, from `iceberg_reader.py`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The catalog name the sinks of [`iceberg_sink`] use.
pub const CATALOG: &str = "cdc";

/// Who reads a table back.
#[derive(Debug, Clone, Copy)]
pub enum Reader {
    /// DuckDB's `iceberg_scan`: append and merge-on-read tables.
    DuckDb,
    /// pyiceberg's scan: append tables (it refuses equality deletes).
    PyIceberg,
}

/// A lakehouse directory: the catalog database and the warehouse.
pub struct Lakehouse {
    dir: tempfile::TempDir,
}

impl Default for Lakehouse {
    fn default() -> Self {
        Lakehouse { dir: tempfile::tempdir().unwrap() }
    }
}

impl Lakehouse {
    /// The SQLite file of the catalog.
    pub fn catalog_db(&self) -> PathBuf {
        self.dir.path().join("catalog.db")
    }

    /// The warehouse directory.
    pub fn warehouse(&self) -> PathBuf {
        self.dir.path().join("warehouse")
    }

    /// An Iceberg sink item for `PipelineParts::sinks`: tables named after their source table
    /// in `namespace`, committing every 0.2 s.
    pub fn sink(&self, sink_id: &str, namespace: &str, write_mode: &str) -> String {
        self.sink_with(sink_id, namespace, write_mode, "")
    }

    /// [`sink`](Self::sink) with more lines of its `iceberg:` block (indented by six spaces).
    pub fn sink_with(&self, sink_id: &str, namespace: &str, write_mode: &str, extra: &str) -> String {
        format!(
            "  - sink_id: {sink_id}\n    sink_type: iceberg\n    retry: {{initial_wait_seconds: 0.2, max_wait_seconds: 2, max_attempts: 3}}\n    iceberg:\n      catalog_name: {CATALOG}\n      catalog_uri: sqlite:{catalog}\n      warehouse: {warehouse}\n      table_namespace: {namespace}\n      table_name: \"{{table}}\"\n      write_mode: {write_mode}\n      batch_size: 5000\n      flush_interval_seconds: 0.2\n{extra}",
            catalog = self.catalog_db().display(),
            warehouse = self.warehouse().display(),
        )
    }

    /// The rows of `namespace.table` as `reader` reads them: the `columns`, as text, sorted;
    /// `None` while the table does not exist yet.
    pub fn read(
        &self,
        reader: Reader,
        namespace: &str,
        table: &str,
        columns: &[&str],
    ) -> Option<Vec<Vec<Option<String>>>> {
        read(reader, &self.catalog_db(), namespace, table, columns)
    }
}

fn read(
    reader: Reader,
    catalog_db: &Path,
    namespace: &str,
    table: &str,
    columns: &[&str],
) -> Option<Vec<Vec<Option<String>>>> {
    if !catalog_db.exists() {
        return None;
    }
    let python_path = std::env::var("CDC_TEST_PYTHONPATH").unwrap_or_else(|_| {
        panic!("CDC_TEST_PYTHONPATH is not set: start the services with `scripts/test-env.sh up` and `eval \"$(scripts/test-env.sh env)\"`")
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("harness/iceberg_reader.py");
    let reader = match reader {
        Reader::DuckDb => "duckdb",
        Reader::PyIceberg => "pyiceberg",
    };
    let output = Command::new("python3")
        .arg(script)
        .args([reader, catalog_db.to_str().unwrap(), CATALOG, namespace, table, &columns.join(",")])
        .env("PYTHONPATH", python_path)
        .output()
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        if stderr.contains("no table") {
            return None;
        }
        panic!("{reader} could not read {namespace}.{table}:\n{stderr}");
    }
    let rows = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Vec<Option<String>>>(line).unwrap())
        .collect();
    Some(rows)
}
