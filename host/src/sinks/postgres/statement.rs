//! A write's statements, built before they run: prepared on the connection, with their
//! parameters owned (array parameters encoded at once), so that they can run later, from
//! another task, without the events they were read from.

use std::error::Error;

use bytes::{Bytes, BytesMut};
use tokio_postgres::types::{IsNull, ToSql, Type};
use tokio_postgres::{Client, Statement};

/// An owned parameter.
pub(super) type Param = Box<dyn ToSql + Send + Sync>;

/// One statement of a write.
pub(super) enum Step {
    /// SQL without parameters, sent as a simple query.
    Sql(String),
    /// A statement prepared on the connection, with its parameters.
    Prepared { statement: Statement, params: Vec<Param> },
}

impl Step {
    /// Runs `steps`, all sent before any reply (each request goes out when its future is
    /// first polled): one round trip for all of them.
    pub async fn run_together(steps: &[Step], client: &Client) -> Result<(), tokio_postgres::Error> {
        futures::future::try_join_all(steps.iter().map(|step| step.run(client))).await.map(drop)
    }

    pub async fn run(&self, client: &Client) -> Result<(), tokio_postgres::Error> {
        match self {
            Step::Sql(sql) => client.batch_execute(sql).await,
            Step::Prepared { statement, params } => {
                let params = params.iter().map(|param| param.as_ref() as &(dyn ToSql + Sync));
                client.execute_raw(statement, params).await.map(drop)
            }
        }
    }
}

/// A parameter in PostgreSQL's binary form, encoded for `ty` when the statement was built.
#[derive(Debug)]
pub(super) struct Encoded {
    ty: Type,
    bytes: Bytes,
}

impl Encoded {
    /// `value` encoded as `ty`.
    pub fn new(value: &(dyn ToSql + Sync), ty: Type) -> Result<Self, Box<dyn Error + Sync + Send>> {
        let mut bytes = BytesMut::new();
        match value.to_sql_checked(&ty, &mut bytes)? {
            IsNull::No => Ok(Encoded { ty, bytes: bytes.freeze() }),
            IsNull::Yes => Err("a statement's array parameter is never NULL".into()),
        }
    }
}

impl ToSql for Encoded {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.extend_from_slice(&self.bytes);
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    /// Only the type it was encoded for: a statement that expects another gets an error.
    fn to_sql_checked(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        if *ty != self.ty {
            return Err(format!("a parameter encoded as {} where the statement expects {ty}", self.ty).into());
        }
        self.to_sql(ty, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encoded_parameter_writes_its_bytes_for_its_own_type_only() {
        let values: Vec<Option<i64>> = vec![Some(7), None];
        let encoded = Encoded::new(&values, Type::INT8_ARRAY).unwrap();
        let mut direct = BytesMut::new();
        values.to_sql(&Type::INT8_ARRAY, &mut direct).unwrap();
        let mut out = BytesMut::new();
        encoded.to_sql_checked(&Type::INT8_ARRAY, &mut out).unwrap();
        assert_eq!(out, direct);
        let Err(error) = encoded.to_sql_checked(&Type::TEXT_ARRAY, &mut out) else {
            panic!("an int8[] parameter bound as text[]")
        };
        assert!(error.to_string().contains("_int8"), "{error}");
        assert!(Encoded::new(&values, Type::TEXT_ARRAY).is_err(), "an i64 array is not a text array");
    }
}
