//! `${VAR}` and `${VAR:-default}` substitution in string values, after YAML parsing.
//!
//! Substitution runs on each parsed string scalar, never on the file text, so a value such as a
//! password containing `#`, `: `, quotes or newlines arrives verbatim and cannot change the
//! document's structure. Rules:
//! - `${NAME}`: the variable's value (an empty value counts as set); unset is an error.
//! - `${NAME:-default}`: the default when `NAME` is unset. The default runs to the first `}` not
//!   written as `\}`; `\}` gives `}`, any other backslash is kept. It may contain `:`.
//! - `$${` gives a literal `${`. Any other `$` is kept as written.
//! - `NAME` is `[A-Za-z_][A-Za-z0-9_]*`. A value is substituted once: `${` in it is kept.
//!
//! Typed fields (`port: ${PORT}`) work because a string is parsed into the field's type later.

use super::error::{Error, ErrorKind};
use super::node::{Node, Scalar, Value};

/// Looks a variable up; `None` means unset. Tests pass a map, [`super::load`] the process env.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Substitutes every `${...}` in `text`, or lists every problem found in it.
pub(super) fn substitute(text: &str, env: Env<'_>) -> Result<String, Vec<ErrorKind>> {
    let mut out = String::with_capacity(text.len());
    let mut errors = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(body) = tail.strip_prefix("${") {
            match reference(body) {
                Ok((name, default, consumed)) => {
                    match (env(name), default) {
                        (Some(value), _) => out.push_str(&value),
                        (None, Some(default)) => out.push_str(&default),
                        (None, None) => errors.push(ErrorKind::UnsetVariable { name: name.into() }),
                    }
                    rest = &body[consumed..];
                }
                Err(reason) => {
                    errors.push(ErrorKind::Substitution { reason });
                    rest = "";
                }
            }
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// Parses `NAME}` or `NAME:-default}` at the start of `body` (just after `${`).
/// Returns the name, the unescaped default and how many bytes were consumed.
fn reference(body: &str) -> Result<(&str, Option<String>, usize), &'static str> {
    let name_len = body.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(body.len());
    let name = &body[..name_len];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("expected a variable name ([A-Za-z_][A-Za-z0-9_]*) after `${`");
    }
    let after = &body[name_len..];
    if after.starts_with('}') {
        return Ok((name, None, name_len + 1));
    }
    let Some(default_src) = after.strip_prefix(":-") else {
        return Err("expected `}` or `:-default}` after the variable name");
    };
    let mut default = String::new();
    let mut chars = default_src.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '}' => return Ok((name, Some(default), name_len + 2 + i + 1)),
            '\\' => match chars.next() {
                Some((_, '}')) => default.push('}'),
                Some((_, other)) => {
                    default.push('\\');
                    default.push(other);
                }
                None => default.push('\\'),
            },
            _ => default.push(c),
        }
    }
    Err("missing closing `}`")
}

/// Substitutes in every string scalar of `node` (keys are left alone), collecting errors.
pub(super) fn substitute_tree(
    node: &mut Node,
    path: &str,
    file: &str,
    env: Env<'_>,
    errors: &mut Vec<Error>,
) {
    match &mut node.value {
        Value::Scalar(Scalar::Str(text)) => match substitute(text, env) {
            Ok(value) => *text = value,
            Err(kinds) => {
                for kind in kinds {
                    errors.push(Error::new(file, Some(node.location), path, kind));
                }
                // Null reads as "not set", so the value raises no second, misleading error.
                node.value = Value::Scalar(Scalar::Null);
            }
        },
        Value::Scalar(_) => {}
        Value::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                substitute_tree(item, &format!("{path}[{i}]"), file, env, errors);
            }
        }
        Value::Map(entries) => {
            for (key, value) in entries.iter_mut() {
                let child = super::node::join(path, &key.name);
                substitute_tree(value, &child, file, env, errors);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn run(text: &str) -> Result<String, Vec<ErrorKind>> {
        let vars: HashMap<&str, &str> = HashMap::from([
            ("HOST", "db.internal"),
            ("PORT", "5432"),
            ("EMPTY", ""),
            ("PASSWORD", "p#ss: \"w'ord\"\nline2 ${NOT_EXPANDED}"),
        ]);
        let env = |name: &str| vars.get(name).map(|v| (*v).to_owned());
        substitute(text, &env)
    }

    #[test]
    fn set_variable_is_substituted() {
        assert_eq!(run("${HOST}").unwrap(), "db.internal");
        assert_eq!(run("postgres://${HOST}:${PORT}/x").unwrap(), "postgres://db.internal:5432/x");
        assert_eq!(run("${EMPTY:-fallback}").unwrap(), "");
    }

    #[test]
    fn unset_variable_takes_its_default() {
        assert_eq!(run("${NOPE:-localhost}").unwrap(), "localhost");
        assert_eq!(run("${NOPE:-}").unwrap(), "");
        assert_eq!(run("${HOST:-other}").unwrap(), "db.internal");
    }

    #[test]
    fn default_may_hold_colons_and_escaped_braces() {
        assert_eq!(run("${URL:-http://h:1/x\\}y}").unwrap(), "http://h:1/x}y");
        assert_eq!(run("${URL:-a\\b}").unwrap(), "a\\b");
    }

    #[test]
    fn unset_without_default_names_every_variable() {
        let errors = run("${A}-${HOST}-${B}").unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "environment variable `A` is not set and has no default",
                "environment variable `B` is not set and has no default",
            ]
        );
    }

    #[test]
    fn secret_arrives_verbatim_and_is_not_rescanned() {
        assert_eq!(run("${PASSWORD}").unwrap(), "p#ss: \"w'ord\"\nline2 ${NOT_EXPANDED}");
    }

    #[test]
    fn escape_and_lone_dollars() {
        assert_eq!(run("$${HOST}").unwrap(), "${HOST}");
        assert_eq!(run("a$b$$c$").unwrap(), "a$b$$c$");
    }

    #[test]
    fn malformed_references_are_errors() {
        for text in ["${", "${HOST", "${1X}", "${A:B}", "${A:-x"] {
            assert!(matches!(run(text).unwrap_err()[0], ErrorKind::Substitution { .. }), "{text}");
        }
    }
}
