//! What a component says about itself, whichever world it exports: the world (found by trying
//! the transform pre-instantiation, then the sink one), its `describe` export, and the names it
//! imports and exports. Used by `cdc plugin inspect` and `cdc plugin test`.

use std::path::Path;

use super::bindings::{sink, transform, types};
use super::engine::PluginRuntime;
use super::instance::{self, arm_deadline};
use super::{Capabilities, PluginError, PluginLimits, PluginSettings};
pub use cdc_event::{ConfigParam, PluginInfo};

/// The `cdc:plugin` world a component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginWorld {
    /// Exports `cdc:plugin/transformer`.
    Transform,
    /// Exports `cdc:plugin/writer`.
    Sink,
}

impl PluginWorld {
    /// The world's name in the WIT package: `transform` or `sink`.
    pub const fn name(self) -> &'static str {
        match self {
            PluginWorld::Transform => "transform",
            PluginWorld::Sink => "sink",
        }
    }
}

/// What [`inspect`] found in a component.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// The world it implements.
    pub world: PluginWorld,
    /// What its `describe` export returned.
    pub info: PluginInfo,
    /// Names the component imports, e.g. `wasi:filesystem/types@0.2.6`.
    pub imports: Vec<String>,
    /// Names the component exports, e.g. `cdc:plugin/transformer@0.1.0`.
    pub exports: Vec<String>,
}

/// Compiles the component at `path`, instantiates it with the default limits and no
/// capabilities, without configuring or opening it, and calls its `describe` export.
pub fn inspect(runtime: &PluginRuntime, path: &Path) -> Result<Inspection, PluginError> {
    let spec = PluginSettings {
        name: path.file_stem().map_or_else(|| "plugin".into(), |stem| stem.to_string_lossy().into_owned()),
        path: path.to_owned(),
        sha256: None,
        config_json: "{}".into(),
        limits: PluginLimits::default(),
        capabilities: Capabilities::default(),
    };
    let (component, pre) = runtime.link(&spec)?;
    let engine = runtime.engine();
    let component_type = component.component_type();
    let imports = component_type.imports(engine).map(|(name, _)| name.to_owned()).collect::<Vec<_>>();
    let exports = component_type.exports(engine).map(|(name, _)| name.to_owned()).collect::<Vec<_>>();

    let mut store = instance::new_store(engine, &spec)?;
    let (world, info) = if let Ok(pre) = transform::TransformPre::new(pre.clone()) {
        let bindings =
            pre.instantiate(&mut store).map_err(|trap| instance::trap(&spec, "instantiate", &trap))?;
        arm_deadline(&mut store, &spec.limits);
        let info = bindings
            .cdc_plugin_transformer()
            .call_describe(&mut store)
            .map_err(|trap| instance::trap(&spec, "describe", &trap))?;
        (PluginWorld::Transform, info)
    } else if let Ok(pre) = sink::SinkPre::new(pre) {
        let bindings =
            pre.instantiate(&mut store).map_err(|trap| instance::trap(&spec, "instantiate", &trap))?;
        arm_deadline(&mut store, &spec.limits);
        let info = bindings
            .cdc_plugin_writer()
            .call_describe(&mut store)
            .map_err(|trap| instance::trap(&spec, "describe", &trap))?;
        (PluginWorld::Sink, info)
    } else {
        return Err(PluginError::Load {
            plugin: spec.name.clone(),
            path: spec.path.display().to_string(),
            reason: format!(
                "exports neither the transform world (cdc:plugin/transformer) nor the sink world \
                 (cdc:plugin/writer); it exports: {}",
                if exports.is_empty() { "nothing".to_owned() } else { exports.join(", ") }
            ),
        });
    };
    Ok(Inspection { world, info: plugin_info(info), imports, exports })
}

fn plugin_info(info: types::PluginInfo) -> PluginInfo {
    PluginInfo {
        name: info.name,
        version: info.version,
        description: info.description,
        config: info
            .config
            .into_iter()
            .map(|param| ConfigParam {
                name: param.name,
                kind: param.kind,
                required: param.required,
                default_value: param.default_value,
                secret: param.secret,
                description: param.description,
            })
            .collect(),
        capabilities: info.capabilities,
    }
}
