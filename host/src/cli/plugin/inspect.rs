//! `cdc plugin inspect PLUGIN.wasm [--json]`: what a component is, from the component itself:
//! its world and the `describe` export (name, version, description, config parameters,
//! capabilities), what it imports, and the file's size and sha256.

use std::path::Path;

use serde_json::{Value as Json, json};

use super::{Failure, InspectArgs, Outcome, human_size, sha256_hex};
use crate::plugin::{Inspection, PluginRuntime};

pub(super) fn run(args: &InspectArgs) -> Outcome {
    let bytes = read_plugin(&args.plugin)?;
    let inspection = inspect(&args.plugin)?;
    let size = bytes.len() as u64;
    let sha256 = sha256_hex(&bytes);
    if args.json {
        let report = to_json(&args.plugin, &inspection, size, &sha256);
        println!("{}", serde_json::to_string_pretty(&report).expect("JSON values serialise"));
    } else {
        print!("{}", to_text(&args.plugin, &inspection, size, &sha256));
    }
    Ok(())
}

/// The component's bytes, or an error that names the file and says what it is instead.
pub(super) fn read_plugin(path: &Path) -> Result<Vec<u8>, Failure> {
    let bytes = std::fs::read(path)
        .map_err(|error| Failure::Failed(format!("cannot read {}: {error}", path.display())))?;
    // Both start with `\0asm`; then a core module has version 1, a component layer 1, version 0xd.
    match bytes.get(..8) {
        Some([0, b'a', b's', b'm', 0x0d, 0, 1, 0]) => Ok(bytes),
        Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => Err(Failure::Failed(format!(
            "{} is a core WebAssembly module, not a component: build plugins for wasm32-wasip2",
            path.display()
        ))),
        _ => Err(Failure::Failed(format!(
            "{} is not a WebAssembly component (build one with `cdc plugin build`)",
            path.display()
        ))),
    }
}

/// Inspects the component in a runtime of its own.
pub(super) fn inspect(path: &Path) -> Result<Inspection, Failure> {
    let runtime = PluginRuntime::new().map_err(|error| Failure::Failed(error.to_string()))?;
    crate::plugin::inspect(&runtime, path).map_err(|error| Failure::Failed(error.to_string()))
}

fn to_json(path: &Path, inspection: &Inspection, size: u64, sha256: &str) -> Json {
    let info = &inspection.info;
    let config: Vec<Json> = info
        .config
        .iter()
        .map(|param| {
            // The default is JSON text; shown as the value it denotes when it parses.
            let default = param.default_value.as_deref().map(|text| {
                serde_json::from_str::<Json>(text).unwrap_or_else(|_| Json::String(text.to_owned()))
            });
            json!({
                "name": param.name,
                "kind": param.kind,
                "required": param.required,
                "default": default,
                "secret": param.secret,
                "description": param.description,
            })
        })
        .collect();
    json!({
        "path": path.display().to_string(),
        "world": inspection.world.name(),
        "name": info.name,
        "version": info.version,
        "description": info.description,
        "config": config,
        "capabilities": info.capabilities,
        "imports": inspection.imports,
        "exports": inspection.exports,
        "size": size,
        "sha256": sha256,
    })
}

fn to_text(path: &Path, inspection: &Inspection, size: u64, sha256: &str) -> String {
    let info = &inspection.info;
    let none = |list: &[String]| if list.is_empty() { "none".to_owned() } else { list.join(", ") };
    let mut text = format!("{}\n", path.display());
    let mut field = |name: &str, value: &str| text.push_str(&format!("  {name:<13}{value}\n"));
    field("world", &format!("{} (exports {})", inspection.world.name(), none(&inspection.exports)));
    field("name", &info.name);
    field("version", &info.version);
    field("description", &info.description);
    field("capabilities", &none(&info.capabilities));
    field("imports", &none(&inspection.imports));
    field("size", &human_size(size));
    field("sha256", sha256);
    if info.config.is_empty() {
        field("config", "no parameters");
        return text;
    }
    text.push_str("  config\n");
    let width = info.config.iter().map(|param| param.name.len()).max().unwrap_or(0);
    for param in &info.config {
        let mut traits = vec![param.kind.clone()];
        traits.push(if param.required { "required".into() } else { "optional".into() });
        if let Some(default) = &param.default_value {
            traits.push(format!("default {default}"));
        }
        if param.secret {
            traits.push("secret".into());
        }
        text.push_str(&format!("    {:<width$}  {}", param.name, traits.join(", ")));
        if !param.description.is_empty() {
            text.push_str(&format!("  ({})", param.description));
        }
        text.push('\n');
    }
    text
}
