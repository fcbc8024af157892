//! Turns the [`super::raw`] structs into the spec types: defaults, bounds and rules.
//!
//! Every broken rule is collected in a [`Ctx`] with its field path and the location the
//! [`super::node`] index gives that path, so one run reports them all.

mod pipeline;
mod platform;

use std::collections::{HashMap, HashSet};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(super) use self::pipeline::pipeline;
pub(super) use self::platform::{default_retry, platform};
use super::error::{Error, ErrorKind, Location};

/// Collects the errors of one file.
pub(super) struct Ctx<'a> {
    file: &'a str,
    index: HashMap<String, Location>,
    muted: HashSet<String>,
    errors: Vec<Error>,
}

impl<'a> Ctx<'a> {
    /// Starts checking `file`, whose field locations are in `index`.
    pub fn new(file: &'a str, index: HashMap<String, Location>) -> Self {
        Self { file, index, muted: HashSet::new(), errors: Vec::new() }
    }

    /// Drops later errors about `paths` (values whose `${...}` failed, already reported).
    pub fn muting(mut self, paths: HashSet<String>) -> Self {
        self.muted = paths;
        self
    }

    /// The errors found so far.
    pub fn into_errors(self) -> Vec<Error> {
        self.errors
    }

    /// The location of `path`, or of its nearest ancestor written in the file.
    fn location(&self, path: &str) -> Option<Location> {
        let mut path = path;
        loop {
            if let Some(location) = self.index.get(path) {
                return Some(*location);
            }
            if path.is_empty() {
                return None;
            }
            path = path.rfind(['.', '[']).map_or("", |at| &path[..at]);
        }
    }

    /// Records an error about `path`.
    pub fn error(&mut self, path: &str, kind: ErrorKind) {
        if self.muted.contains(path) {
            return;
        }
        let location = self.location(path);
        self.errors.push(Error::new(self.file, location, path, kind));
    }

    /// Records a broken rule about `path`.
    pub fn invalid(&mut self, path: &str, message: impl Into<String>) {
        self.error(path, ErrorKind::Invalid { message: message.into() });
    }

    /// Returns a required value, recording an error when it is absent.
    pub fn required<T>(&mut self, value: Option<T>, path: &str) -> Option<T> {
        if value.is_none() {
            self.error(path, ErrorKind::Missing);
        }
        value
    }

    /// Returns a required, non-empty string (empty after an error).
    pub fn required_str(&mut self, value: Option<String>, path: &str) -> String {
        match value {
            None => {
                self.error(path, ErrorKind::Missing);
                String::new()
            }
            Some(value) if value.trim().is_empty() => {
                self.invalid(path, "must not be empty");
                value
            }
            Some(value) => value,
        }
    }

    /// Returns an integer in `range` (or the default), recording an error when outside.
    pub fn int<T: TryFrom<i64> + Copy>(
        &mut self,
        value: Option<i64>,
        default: T,
        range: RangeInclusive<i64>,
        path: &str,
    ) -> T {
        let Some(value) = value else { return default };
        match T::try_from(value) {
            Ok(typed) if range.contains(&value) => typed,
            _ => {
                // Bounds that only guard the type's size read better as one-sided.
                let (start, end) = (*range.start(), *range.end());
                let message = match (end >= i64::from(i32::MAX), value < start) {
                    (true, true) => format!("must be at least {start}"),
                    (true, false) => format!("must be at most {end}"),
                    (false, _) => format!("must be between {start} and {end}"),
                };
                self.invalid(path, message);
                default
            }
        }
    }

    /// Returns the CA file `value` (joined to `base_dir` when relative), recording an error
    /// when it cannot be read or holds no PEM certificate.
    pub fn ca_file(&mut self, value: Option<String>, base_dir: &Path, path: &str) -> Option<PathBuf> {
        let file = base_dir.join(value?);
        if let Err(error) = crate::http::ca_certificates(&file) {
            self.invalid(path, crate::error::chain(&error));
        }
        Some(file)
    }

    /// Returns a port (1..=65535).
    pub fn port(&mut self, value: Option<i64>, default: u16, path: &str) -> u16 {
        self.int(value, default, 1..=65535, path)
    }

    /// Returns a count that may be zero.
    pub fn count(&mut self, value: Option<i64>, default: usize, path: &str) -> usize {
        self.int(value, default, 0..=i64::MAX, path)
    }

    /// Returns a count of at least one.
    pub fn positive_count(&mut self, value: Option<i64>, default: usize, path: &str) -> usize {
        self.int(value, default, 1..=i64::MAX, path)
    }

    /// Returns seconds as a duration; `allow_zero` admits 0, negatives are always errors.
    pub fn seconds(&mut self, value: Option<f64>, default: f64, allow_zero: bool, path: &str) -> Duration {
        let fallback = Duration::from_secs_f64(default);
        let Some(value) = value else { return fallback };
        let ok = value.is_finite() && (value > 0.0 || (allow_zero && value == 0.0));
        match Duration::try_from_secs_f64(value) {
            Ok(duration) if ok => duration,
            _ => {
                let rule = if allow_zero { "zero or more" } else { "greater than zero" };
                self.invalid(path, format!("must be a number of seconds {rule}"));
                fallback
            }
        }
    }

    /// Returns milliseconds in `range` as a duration.
    pub fn millis(
        &mut self,
        value: Option<i64>,
        default: u64,
        range: RangeInclusive<i64>,
        path: &str,
    ) -> Duration {
        Duration::from_millis(self.int(value, default, range, path))
    }
}

/// Whether `name` is `<namespace>.<name>` with both parts `[A-Za-z_]\w*` (the seed's rule).
pub(super) fn is_qualified(name: &str) -> bool {
    fn part(s: &str) -> bool {
        let mut chars = s.chars();
        chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
            && chars.all(|c| c.is_alphanumeric() || c == '_')
    }
    name.split_once('.').is_some_and(|(a, b)| part(a) && part(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_names() {
        assert!(is_qualified("public.orders"));
        assert!(is_qualified("_s.t1"));
        assert!(!is_qualified("orders"));
        assert!(!is_qualified("a.b.c"));
        assert!(!is_qualified("1a.b"));
        assert!(!is_qualified("a."));
    }

    #[test]
    fn location_falls_back_to_the_nearest_ancestor() {
        let index = HashMap::from([
            ("sinks[0]".to_owned(), Location { line: 4, column: 5 }),
            (String::new(), Location { line: 1, column: 1 }),
        ]);
        let ctx = Ctx::new("f", index);
        assert_eq!(ctx.location("sinks[0].webhook.url"), Some(Location { line: 4, column: 5 }));
        assert_eq!(ctx.location("source"), Some(Location { line: 1, column: 1 }));
    }
}
