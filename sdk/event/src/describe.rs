//! What a plugin says about itself (WIT `plugin-info`): name, version, description, the config
//! parameters it understands and the capabilities it needs. The host validates the pipeline's
//! config against it before `configure` / `open`.

/// A plugin's self-description.
///
/// Empty `name`, `version` and `description` are filled in from the plugin crate's Cargo
/// metadata by the export macros, so most plugins only list their parameters:
///
/// ```
/// use cdc_event::{ConfigParam, PluginInfo};
///
/// let info = PluginInfo::new()
///     .param(ConfigParam::list("columns").required().doc("Columns to mask"))
///     .param(ConfigParam::string("mask_with").default_json("\"***\"").doc("The replacement"));
/// assert_eq!(info.config[1].default_value.as_deref(), Some("\"***\""));
/// assert!(info.name.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PluginInfo {
    /// Plugin name; empty means the crate's package name.
    pub name: String,
    /// Plugin version; empty means the crate's version.
    pub version: String,
    /// One paragraph on what it does; empty means the crate's `description`.
    pub description: String,
    /// The config parameters it understands.
    pub config: Vec<ConfigParam>,
    /// Capabilities it needs, such as `"http"`.
    pub capabilities: Vec<String>,
}

impl PluginInfo {
    /// An empty description (everything filled in from Cargo metadata).
    pub fn new() -> Self {
        PluginInfo::default()
    }

    /// With `description` set.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// With one more config parameter.
    pub fn param(mut self, param: ConfigParam) -> Self {
        self.config.push(param);
        self
    }

    /// With one more capability.
    pub fn capability(mut self, capability: impl Into<String>) -> Self {
        self.capabilities.push(capability.into());
        self
    }

    /// Fills empty `name`, `version` and `description` from the package metadata the export
    /// macros pass in (`CARGO_PKG_NAME`, `CARGO_PKG_VERSION`, `CARGO_PKG_DESCRIPTION`).
    pub fn with_package_defaults(mut self, name: &str, version: &str, description: &str) -> Self {
        for (field, default) in
            [(&mut self.name, name), (&mut self.version, version), (&mut self.description, description)]
        {
            if field.is_empty() {
                default.clone_into(field);
            }
        }
        self
    }
}

/// A config parameter a plugin understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigParam {
    /// The key in the plugin's config object.
    pub name: String,
    /// `"string"`, `"integer"`, `"number"`, `"boolean"`, `"list"` or `"object"`.
    pub kind: String,
    /// Whether the pipeline must set it.
    pub required: bool,
    /// JSON text of the default, if any.
    pub default_value: Option<String>,
    /// Whether the value is a secret, redacted by the host in logs and errors.
    pub secret: bool,
    /// What it means.
    pub description: String,
}

impl ConfigParam {
    /// An optional, non-secret parameter of the given kind.
    pub fn new(name: impl Into<String>, kind: &str) -> Self {
        ConfigParam {
            name: name.into(),
            kind: kind.to_owned(),
            required: false,
            default_value: None,
            secret: false,
            description: String::new(),
        }
    }

    /// A `string` parameter.
    pub fn string(name: impl Into<String>) -> Self {
        Self::new(name, "string")
    }

    /// An `integer` parameter.
    pub fn integer(name: impl Into<String>) -> Self {
        Self::new(name, "integer")
    }

    /// A `number` parameter.
    pub fn number(name: impl Into<String>) -> Self {
        Self::new(name, "number")
    }

    /// A `boolean` parameter.
    pub fn boolean(name: impl Into<String>) -> Self {
        Self::new(name, "boolean")
    }

    /// A `list` parameter.
    pub fn list(name: impl Into<String>) -> Self {
        Self::new(name, "list")
    }

    /// An `object` parameter.
    pub fn object(name: impl Into<String>) -> Self {
        Self::new(name, "object")
    }

    /// Marks it required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Marks it secret.
    pub fn secret(mut self) -> Self {
        self.secret = true;
        self
    }

    /// Sets the default, as JSON text (`"\"***\""`, `"[]"`, `"10"`).
    pub fn default_json(mut self, json: impl Into<String>) -> Self {
        self.default_value = Some(json.into());
        self
    }

    /// Sets the description.
    pub fn doc(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }
}
