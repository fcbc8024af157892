"""Reads an Iceberg table the cdc sink wrote, with an independent reader, and prints its rows
as JSON lines (sorted), for the end-to-end tests; or appends a row to it with pyiceberg, as
another writer of the table would.

    python3 iceberg_reader.py duckdb|pyiceberg NAMESPACE TABLE COLUMNS
    python3 iceberg_reader.py append NAMESPACE TABLE '{"column": value, ...}'

COLUMNS is a comma-separated list of the columns to print. The catalog comes from the
environment: an SQL catalog in an SQLite file (CDC_TEST_CATALOG_DB, CDC_TEST_CATALOG_NAME) or a
REST catalog (CDC_TEST_REST_URI, CDC_TEST_REST_PREFIX, CDC_TEST_REST_TOKEN). With
CDC_TEST_S3_ENDPOINT set, the files are in S3 there (moto; pyiceberg only: DuckDB's S3 support
is an extension that is not on PyPI).

DuckDB reads merge-on-read tables (equality deletes applied); pyiceberg reads append tables.
Values print as text, so that the tests compare exact decimals and timestamps. A table or a
column that does not exist (yet) exits with status 3, so that the tests can wait for it.
"""

import glob
import json
import os
import sys

NOT_YET = 3


def catalog():
    environ = os.environ
    properties = {}
    endpoint = environ.get("CDC_TEST_S3_ENDPOINT")
    if endpoint:
        properties = {
            "s3.endpoint": endpoint,
            "s3.access-key-id": "test",
            "s3.secret-access-key": "test",
            "s3.region": "us-east-1",
        }
    if "CDC_TEST_REST_URI" in environ:
        from pyiceberg.catalog.rest import RestCatalog

        return RestCatalog(
            "rest",
            uri=environ["CDC_TEST_REST_URI"],
            prefix=environ["CDC_TEST_REST_PREFIX"],
            token=environ["CDC_TEST_REST_TOKEN"],
            **properties,
        )
    from pyiceberg.catalog.sql import SqlCatalog

    database = environ["CDC_TEST_CATALOG_DB"]
    return SqlCatalog(environ["CDC_TEST_CATALOG_NAME"], uri=f"sqlite:///{database}", **properties)


def load(namespace, table, columns):
    """The table, once it exists with every column asked for."""
    from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

    try:
        loaded = catalog().load_table(f"{namespace}.{table}")
    except (NoSuchTableError, NoSuchNamespaceError) as error:
        print(f"not yet: no table {namespace}.{table}: {error}", file=sys.stderr)
        sys.exit(NOT_YET)
    names = {field.name for field in loaded.schema().fields}
    missing = [column for column in columns if column not in names]
    if missing:
        print(f"not yet: {namespace}.{table} has no column {', '.join(missing)}", file=sys.stderr)
        sys.exit(NOT_YET)
    return loaded


def extension(module):
    folder = os.path.dirname(__import__(module).__file__)
    found = glob.glob(os.path.join(folder, "**", "*.duckdb_extension"), recursive=True)
    if not found:
        sys.exit(f"no .duckdb_extension in {folder}")
    return found[0]


def read_duckdb(namespace, table, columns):
    import duckdb

    location = load(namespace, table, columns).metadata_location.removeprefix("file://")
    db = duckdb.connect()
    # Avro first: the Iceberg extension reads manifests through it.
    for module in ("duckdb_extension_avro", "duckdb_extension_iceberg"):
        db.execute(f"LOAD '{extension(module)}'")
    selected = ", ".join(f'CAST("{c}" AS VARCHAR)' for c in columns)
    return db.execute(f"SELECT {selected} FROM iceberg_scan('{location}')").fetchall()


def read_pyiceberg(namespace, table, columns):
    arrow = load(namespace, table, columns).scan(selected_fields=tuple(columns)).to_arrow()
    rows = arrow.to_pylist()
    return [tuple(None if row[c] is None else str(row[c]) for c in columns) for row in rows]


def append(namespace, table, values):
    """Appends one row: the given values, the other columns null."""
    import pyarrow as pa

    values = json.loads(values)
    loaded = load(namespace, table, list(values))
    schema = loaded.schema().as_arrow()
    row = {field.name: pa.array([values.get(field.name)], type=field.type) for field in schema}
    loaded.append(pa.Table.from_pydict(row, schema=schema))


def main():
    if sys.argv[1] == "append":
        append(*sys.argv[2:5])
        return
    reader, namespace, table, columns = sys.argv[1:5]
    columns = columns.split(",")
    read = {"duckdb": read_duckdb, "pyiceberg": read_pyiceberg}[reader]
    rows = read(namespace, table, columns)
    for row in sorted(rows, key=lambda row: tuple("" if v is None else str(v) for v in row)):
        print(json.dumps(list(row)))


if __name__ == "__main__":
    main()
