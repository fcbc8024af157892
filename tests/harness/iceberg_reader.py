"""Reads an Iceberg table the cdc sink wrote, with an independent reader, and prints its rows
as JSON lines (sorted), for the end-to-end tests.

    python3 iceberg_reader.py duckdb|pyiceberg CATALOG_DB CATALOG_NAME NAMESPACE TABLE COLUMNS

CATALOG_DB is the SQLite file of the SQL catalog; COLUMNS is a comma-separated list of the
columns to print. DuckDB reads merge-on-read tables (equality deletes applied); pyiceberg reads
append tables. Values print as text, so that the tests compare exact decimals and timestamps.
"""

import glob
import json
import os
import sqlite3
import sys


def metadata_location(catalog_db, catalog_name, namespace, table):
    with sqlite3.connect(catalog_db) as db:
        row = db.execute(
            "SELECT metadata_location FROM iceberg_tables "
            "WHERE catalog_name = ? AND table_namespace = ? AND table_name = ?",
            (catalog_name, namespace, table),
        ).fetchone()
    if row is None:
        sys.exit(f"no table {namespace}.{table} in catalog {catalog_name}")
    return row[0]


def extension(module):
    folder = os.path.dirname(__import__(module).__file__)
    found = glob.glob(os.path.join(folder, "**", "*.duckdb_extension"), recursive=True)
    if not found:
        sys.exit(f"no .duckdb_extension in {folder}")
    return found[0]


def read_duckdb(catalog_db, catalog_name, namespace, table, columns):
    import duckdb

    location = metadata_location(catalog_db, catalog_name, namespace, table)
    db = duckdb.connect()
    # Avro first: the Iceberg extension reads manifests through it.
    for module in ("duckdb_extension_avro", "duckdb_extension_iceberg"):
        db.execute(f"LOAD '{extension(module)}'")
    selected = ", ".join(f'CAST("{c}" AS VARCHAR)' for c in columns)
    location = location.removeprefix("file://")
    return db.execute(f"SELECT {selected} FROM iceberg_scan('{location}')").fetchall()


def read_pyiceberg(catalog_db, catalog_name, namespace, table, columns):
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog(catalog_name, uri=f"sqlite:///{catalog_db}")
    arrow = catalog.load_table(f"{namespace}.{table}").scan(selected_fields=tuple(columns)).to_arrow()
    rows = arrow.to_pylist()
    return [tuple(None if row[c] is None else str(row[c]) for c in columns) for row in rows]


def main():
    reader, catalog_db, catalog_name, namespace, table, columns = sys.argv[1:7]
    columns = columns.split(",")
    read = {"duckdb": read_duckdb, "pyiceberg": read_pyiceberg}[reader]
    rows = read(catalog_db, catalog_name, namespace, table, columns)
    for row in sorted(rows, key=lambda row: tuple("" if v is None else str(v) for v in row)):
        print(json.dumps(list(row)))


if __name__ == "__main__":
    main()
