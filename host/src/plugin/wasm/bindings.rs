//! Host bindings of the `cdc:plugin` worlds, generated from `wit/`. The sink world reuses the
//! transform world's `types` and `host` interfaces, so errors and imports have one Rust type.

/// The `transform` world.
pub(super) mod transform {
    wasmtime::component::bindgen!({ path: "../wit", world: "transform" });
}

/// The `sink` world.
pub(super) mod sink {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "sink",
        with: {
            "cdc:plugin/types": super::transform::cdc::plugin::types,
            "cdc:plugin/host": super::transform::cdc::plugin::host,
        },
    });
}

pub(super) use transform::cdc::plugin::{host, types};
