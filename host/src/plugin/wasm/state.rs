//! The per-instance store state: WASI with only the capabilities the pipeline granted, memory
//! limits, outbound HTTP (wasi:http) only to the hosts the pipeline granted, and the host imports
//! every plugin world shares (`cdc:plugin/host`).

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

use super::PluginSettings;
use super::bindings::{host, types};

/// Data owned by one plugin instance's store.
pub(super) struct InstanceState {
    plugin: String,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    gate: HttpGate,
    table: ResourceTable,
    pub(super) limits: StoreLimits,
}

impl InstanceState {
    /// A state that grants only what `spec` names: the values of its env vars and its
    /// directory, HTTP to its allowed hosts. No sockets, no args, no other files; stdio is discarded.
    pub(super) fn new(spec: &PluginSettings) -> Result<Self, String> {
        let mut wasi = WasiCtx::builder();
        for name in &spec.capabilities.env {
            if let Ok(value) = std::env::var(name) {
                wasi.env(name, value);
            }
        }
        if let Some(directory) = &spec.capabilities.directory {
            let perms = if directory.read_only { FsPerms::ReadOnly } else { FsPerms::ReadWrite };
            wasi.preopened_dir(&directory.host_path, &directory.mount, perms)
                .map_err(|error| format!("cannot grant {}: {error}", directory.host_path.display()))?;
        }
        Ok(InstanceState {
            plugin: spec.name.clone(),
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            gate: HttpGate { plugin: spec.name.clone(), allowed: spec.capabilities.allowed_hosts.clone() },
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(spec.limits.memory_bytes)
                .instances(64)
                .trap_on_grow_failure(true)
                .build(),
        })
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.gate }
    }
}

/// The wasi:http hooks: a request leaves the host only when its authority was granted.
struct HttpGate {
    plugin: String,
    allowed: Vec<String>,
}

/// The boxed future `WasiHttpHooks::send_request` returns.
type SendFuture = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<WasiBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for HttpGate {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> SendFuture {
        let authority = request.uri().authority();
        let granted = authority
            .is_some_and(|authority| is_granted(&self.allowed, authority.host(), authority.port_u16()));
        if !granted {
            let authority = authority.map_or_else(|| "<none>".to_owned(), |authority| authority.to_string());
            tracing::warn!(
                plugin = self.plugin.as_str(),
                authority = authority.as_str(),
                "plugin HTTP request denied: host not in allowed_hosts"
            );
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        // The crate's default sender, which this impl overrides.
        let default: &mut dyn WasiHttpHooks = &mut DefaultHooks;
        default.send_request(request, options, fut)
    }
}

/// A hooks value with every default, to reach the default sender.
struct DefaultHooks;

impl WasiHttpHooks for DefaultHooks {}

/// Whether `host` (with `port`, when the URI names one) is granted by an entry of `allowed`:
/// `host` grants every port of that host, `host:port` that port only. Hosts compare without case.
pub(super) fn is_granted(allowed: &[String], host: &str, port: Option<u16>) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    allowed.iter().any(|entry| {
        let entry = entry.trim();
        let (entry_host, entry_port) = split_host_port(entry);
        if !entry_host.eq_ignore_ascii_case(host) {
            return false;
        }
        match entry_port {
            None => true,
            Some(entry_port) => port == Some(entry_port),
        }
    })
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port`; a bare IPv6 address has no port.
fn split_host_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((host, tail)) => (host, tail.strip_prefix(':').and_then(|port| port.parse().ok())),
            None => (rest, None),
        };
    }
    match entry.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(port) => (host, Some(port)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

impl host::Host for InstanceState {
    fn log(&mut self, level: host::Level, message: String) {
        use host::Level;
        let plugin = self.plugin.as_str();
        match level {
            Level::Trace => tracing::trace!(plugin, "{message}"),
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
    }

    fn counter_add(&mut self, name: String, delta: u64) {
        tracing::trace!(plugin = self.plugin.as_str(), counter = name.as_str(), delta, "plugin.counter");
    }
}

impl types::Host for InstanceState {}

#[cfg(test)]
mod tests {
    use super::is_granted;

    #[test]
    fn grants_by_host_and_port() {
        let allowed =
            vec!["127.0.0.1:8080".to_owned(), "api.example.com".to_owned(), "[::1]:9000".to_owned()];
        assert!(is_granted(&allowed, "127.0.0.1", Some(8080)));
        assert!(!is_granted(&allowed, "127.0.0.1", Some(8081)));
        assert!(!is_granted(&allowed, "127.0.0.1", None));
        assert!(is_granted(&allowed, "api.example.com", None));
        assert!(is_granted(&allowed, "API.example.com", Some(443)));
        assert!(!is_granted(&allowed, "evil.example.com", None));
        assert!(!is_granted(&allowed, "api.example.com.evil.net", None));
        assert!(is_granted(&allowed, "[::1]", Some(9000)));
        assert!(!is_granted(&allowed, "[::1]", Some(9001)));
        assert!(!is_granted(&[], "api.example.com", None));
    }
}
