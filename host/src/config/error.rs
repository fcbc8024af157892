//! Config errors: each names the file, line, column and field path it is about.

use std::fmt;

use serde::de::{self, Unexpected};

/// A line and column in a config file, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// Line, from 1.
    pub line: u64,
    /// Column, from 1.
    pub column: u64,
}

/// One problem in the config, with where it is.
#[derive(Debug)]
pub struct Error {
    /// The file as the user named it (or `pipeline.yaml`/`platform.yaml` for text).
    pub file: String,
    /// Line and column, when the problem has a place in the file.
    pub location: Option<Location>,
    /// Field path such as `sinks[0].webhook.timeout_seconds`; empty for the whole file.
    pub path: String,
    /// What is wrong.
    pub kind: ErrorKind,
}

/// What is wrong with a config value; the message never contains a value that may be secret.
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    /// The file could not be read.
    #[error("cannot read the file")]
    Read {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not well-formed YAML.
    #[error("invalid yaml: {message}")]
    Syntax {
        /// The parser's description.
        message: String,
    },
    /// A key that no field of that block has.
    #[error("unknown field `{field}`{}, expected one of {}", suggest(*.suggestion), list(expected))]
    UnknownField {
        /// The key as written.
        field: String,
        /// The closest known field name, if one is close.
        suggestion: Option<&'static str>,
        /// Every known field name of that block.
        expected: &'static [&'static str],
    },
    /// A platform key written in the pipeline file.
    #[error("`{key}` belongs in platform.yaml, not in the pipeline file")]
    Misplaced {
        /// The key as written.
        key: String,
    },
    /// A value of the wrong YAML type.
    #[error("invalid type: expected {expected}, found {found}")]
    InvalidType {
        /// What the field takes.
        expected: String,
        /// What kind of value was written (never the value itself).
        found: &'static str,
    },
    /// A value that is not one of an enum's names.
    #[error("unknown value `{value}`, expected one of {}", list(expected))]
    UnknownVariant {
        /// The value as written.
        value: String,
        /// The accepted names.
        expected: &'static [&'static str],
    },
    /// A required field is absent.
    #[error("missing required field")]
    Missing,
    /// `${NAME}` with `NAME` unset and no `:-default`.
    #[error("environment variable `{name}` is not set and has no default")]
    UnsetVariable {
        /// The variable's name.
        name: String,
    },
    /// A malformed `${...}` reference.
    #[error("invalid `${{...}}` reference: {reason}")]
    Substitution {
        /// What is malformed.
        reason: &'static str,
    },
    /// A value that breaks a rule (bounds, pattern, uniqueness, consistency).
    #[error("{message}")]
    Invalid {
        /// The rule that is broken.
        message: String,
    },
}

impl Error {
    /// Creates an error in `file` at `location` about the field at `path`.
    pub fn new(
        file: impl Into<String>,
        location: Option<Location>,
        path: impl Into<String>,
        kind: ErrorKind,
    ) -> Self {
        Self { file: file.into(), location, path: path.into(), kind }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(Location { line, column }) = self.location {
            write!(f, ":{line}:{column}")?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.kind)?;
        // The source is part of the line because errors are listed, not chained.
        if let ErrorKind::Read { source } = &self.kind {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.kind)
    }
}

/// Every problem found in a config, listed one per line by `Display`.
#[derive(Debug)]
pub struct Errors(Vec<Error>);

impl Errors {
    /// Wraps a list of errors.
    pub fn new(errors: Vec<Error>) -> Self {
        Self(errors)
    }

    /// The errors, in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, Error> {
        self.0.iter()
    }

    /// The number of errors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The errors as a vector.
    pub fn into_vec(self) -> Vec<Error> {
        self.0
    }
}

impl From<Error> for Errors {
    fn from(error: Error) -> Self {
        Self(vec![error])
    }
}

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Errors {}

impl<'a> IntoIterator for &'a Errors {
    type Item = &'a Error;
    type IntoIter = std::slice::Iter<'a, Error>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// An error while deserializing, located by the innermost node that saw it.
#[derive(Debug)]
pub(super) struct DeError {
    kind: ErrorKind,
    path: Option<String>,
    location: Option<Location>,
}

impl DeError {
    pub(super) fn at(mut self, path: &str, location: Location) -> Self {
        if self.path.is_none() {
            self.path = Some(path.to_owned());
            self.location = Some(location);
        }
        self
    }

    pub(super) fn into_error(self, file: &str) -> Error {
        Error::new(file, self.location, self.path.unwrap_or_default(), self.kind)
    }

    pub(super) fn kind(kind: ErrorKind) -> Self {
        Self { kind, path: None, location: None }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::kind(ErrorKind::Invalid { message: msg.to_string() })
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::kind(ErrorKind::InvalidType { expected: exp.to_string(), found: unexpected_kind(&unexp) })
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::invalid_type(unexp, exp)
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Self::kind(ErrorKind::UnknownVariant { value: variant.to_owned(), expected })
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Self::kind(ErrorKind::UnknownField {
            field: field.to_owned(),
            suggestion: closest(field, expected),
            expected,
        })
    }

    fn missing_field(_field: &'static str) -> Self {
        Self::kind(ErrorKind::Missing)
    }
}

/// Names the kind of an unexpected value without its content, which may be a secret.
fn unexpected_kind(unexp: &Unexpected<'_>) -> &'static str {
    match unexp {
        Unexpected::Bool(_) => "a boolean",
        Unexpected::Unsigned(_) | Unexpected::Signed(_) => "an integer",
        Unexpected::Float(_) => "a float",
        Unexpected::Char(_) | Unexpected::Str(_) => "a string",
        Unexpected::Bytes(_) => "bytes",
        Unexpected::Unit | Unexpected::Option => "null",
        Unexpected::Seq => "a sequence",
        Unexpected::Map => "a mapping",
        _ => "another kind of value",
    }
}

fn suggest(suggestion: Option<&str>) -> String {
    suggestion.map_or_else(String::new, |s| format!(" (did you mean `{s}`?)"))
}

fn list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    quoted.join(", ")
}

/// Returns the name in `candidates` closest to `name`, if it is at most two edits away.
pub(super) fn closest(name: &str, candidates: &'static [&'static str]) -> Option<&'static str> {
    candidates
        .iter()
        .map(|c| (edit_distance(name, c), *c))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_file_line_column_path_message() {
        let error =
            Error::new("p.yaml", Some(Location { line: 3, column: 5 }), "source.port", ErrorKind::Missing);
        assert_eq!(error.to_string(), "p.yaml:3:5: source.port: missing required field");
        let errors = Errors::new(vec![error, Error::new("p.yaml", None, "", ErrorKind::Missing)]);
        assert_eq!(
            errors.to_string(),
            "p.yaml:3:5: source.port: missing required field\np.yaml: missing required field"
        );
    }

    #[test]
    fn closest_finds_typos() {
        const FIELDS: &[&str] = &["tables", "host", "enabled"];
        assert_eq!(closest("tabels", FIELDS), Some("tables"));
        assert_eq!(closest("enabeld", FIELDS), Some("enabled"));
        assert_eq!(closest("zzzzzz", FIELDS), None);
    }
}
