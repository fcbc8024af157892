//! The plugin's settings from the pipeline (`plugin.config` in `pipeline.yaml`), with typed
//! accessors whose errors are [`ErrorClass::Fatal`](crate::ErrorClass::Fatal) and name the key.

use serde::de::DeserializeOwned;
use serde_json::Value as Json;

use crate::Error;

/// The pipeline's config for this plugin: a JSON object (`{}` when the pipeline gives none).
///
/// ```
/// use cdc_sdk::Config;
/// use serde_json::json;
///
/// let config = Config::from(json!({"columns": ["email"], "mask_with": null}));
/// let columns: Vec<String> = config.get("columns")?;
/// let mask: String = config.get_or("mask_with", "***".to_owned())?;
/// assert_eq!((columns, mask.as_str()), (vec!["email".to_owned()], "***"));
/// assert_eq!(
///     config.get::<u32>("limit").unwrap_err().message,
///     "config key `limit` is required"
/// );
/// # Ok::<(), cdc_sdk::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Config(Json);

impl Default for Config {
    /// `{}`.
    fn default() -> Self {
        Config(Json::Object(serde_json::Map::new()))
    }
}

impl Config {
    /// Reads the JSON text the host passes to `configure` / `open`. Empty text and `null` are `{}`.
    ///
    /// # Errors
    /// A fatal error when the text is not JSON or not an object.
    pub fn from_json_text(text: &str) -> Result<Self, Error> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let value: Json = serde_json::from_str(text)
            .map_err(|error| Error::fatal(format!("config is not JSON: {error}")))?;
        match value {
            Json::Null => Ok(Config::default()),
            Json::Object(_) => Ok(Config(value)),
            _ => Err(Error::fatal("config must be a JSON object")),
        }
    }

    /// The whole config as JSON.
    pub fn as_json(&self) -> &Json {
        &self.0
    }

    /// The whole config as JSON, by value.
    pub fn into_json(self) -> Json {
        self.0
    }

    /// Deserializes the whole config, e.g. into a `#[derive(Deserialize)]` struct.
    ///
    /// # Errors
    /// A fatal error saying what serde found wrong.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, Error> {
        T::deserialize(&self.0).map_err(|error| Error::fatal(format!("invalid config: {error}")))
    }

    /// A required key. A missing key and `null` are both "missing".
    ///
    /// # Errors
    /// A fatal error when the key is missing or has the wrong type.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<T, Error> {
        self.get_opt(key)?.ok_or_else(|| Error::fatal(format!("config key `{key}` is required")))
    }

    /// An optional key: `default` when it is missing or `null`.
    ///
    /// # Errors
    /// A fatal error when the key has the wrong type.
    pub fn get_or<T: DeserializeOwned>(&self, key: &str, default: T) -> Result<T, Error> {
        Ok(self.get_opt(key)?.unwrap_or(default))
    }

    /// An optional key: `None` when it is missing or `null`.
    ///
    /// # Errors
    /// A fatal error when the key has the wrong type.
    pub fn get_opt<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        match self.0.get(key) {
            None | Some(Json::Null) => Ok(None),
            Some(value) => T::deserialize(value)
                .map(Some)
                .map_err(|error| Error::fatal(format!("config key `{key}`: {error}"))),
        }
    }

    /// Refuses keys other than `known`, so that a typo in `pipeline.yaml` fails at start.
    ///
    /// # Errors
    /// A fatal error naming the first unknown key.
    pub fn deny_unknown(&self, known: &[&str]) -> Result<(), Error> {
        let keys = self.0.as_object().into_iter().flat_map(|object| object.keys());
        match keys.into_iter().find(|key| !known.contains(&key.as_str())) {
            Some(key) => {
                Err(Error::fatal(format!("unknown config key `{key}` (known: {})", known.join(", "))))
            }
            None => Ok(()),
        }
    }
}

impl From<Json> for Config {
    /// Wraps JSON as a config; `null` becomes `{}`.
    fn from(json: Json) -> Self {
        if json.is_null() { Config::default() } else { Config(json) }
    }
}
