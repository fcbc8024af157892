//! `http-sink`: a cdc sink plugin that POSTs change events to a URL through wasi:http. `write`
//! buffers the batch's events; `flush` sends everything buffered since the last flush as one JSON
//! array and succeeds only on a 2xx answer, so the host moves offsets only past delivered events.
//!
//! The host lets the request leave only when the URL's host is in the pipeline's
//! `plugin.allowed_hosts`; a denied request is a fatal error (retrying cannot help), any other
//! failure or a non-2xx answer is retryable (the host retries the flush; nothing is lost).
//!
//! Config: `{"url": "http://127.0.0.1:8080/events", "timeout_ms": 900}` (keep `timeout_ms` under the plugin's
//! `limits.call_timeout``.
//!
//! Build: `cargo build --target wasm32-wasip2 --release`.

use std::cell::RefCell;

use serde::Deserialize;
use wasi::http::outgoing_handler;
use wasi::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme};

wit_bindgen::generate!({ path: "../../wit", world: "sink" });

use cdc::plugin::host::{self, Level};
use cdc::plugin::types::{Batch, ConfigParam, ErrorClass, PluginError, PluginInfo, RecordError};
use exports::cdc::plugin::writer::Guest;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    url: String,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
}

/// Under the host's default call deadline (1 s): a call blocked on HTTP past the plugin's
/// `call_timeout` traps when it returns.
fn default_timeout_ms() -> u64 {
    900
}

/// The parts of an `http(s)://authority/path?query` URL that a wasi:http request takes.
struct Target {
    scheme: Scheme,
    authority: String,
    path_with_query: String,
}

fn parse_url(url: &str) -> Result<Target, String> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else {
        return Err(format!("url `{url}` must start with http:// or https://"));
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("url `{url}` needs a host (and no user info)"));
    }
    let path_with_query = if path.starts_with('?') { format!("/{path}") } else { path.to_owned() };
    Ok(Target { scheme, authority: authority.to_owned(), path_with_query })
}

struct State {
    config: Config,
    target: Target,
    /// Events written since the last successful flush, each one JSON object.
    pending: Vec<Vec<u8>>,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

fn error(class: ErrorClass, message: impl Into<String>) -> PluginError {
    PluginError { class, message: message.into() }
}

/// The body of one flush: the pending events as a JSON array.
fn json_array(events: &[Vec<u8>]) -> Vec<u8> {
    let mut body = Vec::with_capacity(events.iter().map(|event| event.len() + 1).sum::<usize>() + 2);
    body.push(b'[');
    for (index, event) in events.iter().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        body.extend_from_slice(event);
    }
    body.push(b']');
    body
}

/// Turns a wasi:http error into the sink's error: a denied request is fatal and says so.
fn http_error(target: &Target, code: &ErrorCode) -> PluginError {
    match code {
        ErrorCode::HttpRequestDenied => error(
            ErrorClass::Fatal,
            format!(
                "POST to `{0}` denied: host `{0}` was not granted to this plugin \
                 (add it to plugin.allowed_hosts)",
                target.authority
            ),
        ),
        other => error(ErrorClass::Retryable, format!("POST to `{}` failed: {other:?}", target.authority)),
    }
}

/// Sends `body` as one POST and waits for the answer's status.
fn post(config: &Config, target: &Target, body: &[u8]) -> Result<(), PluginError> {
    let failed = |what: &str| error(ErrorClass::Retryable, format!("POST to `{}`: {what}", target.authority));
    let headers = Fields::from_list(&[("content-type".to_owned(), b"application/json".to_vec())])
        .map_err(|e| failed(&format!("bad header: {e:?}")))?;
    let request = OutgoingRequest::new(headers);
    request.set_method(&Method::Post).map_err(|()| failed("cannot set the method"))?;
    request.set_scheme(Some(&target.scheme)).map_err(|()| failed("cannot set the scheme"))?;
    request.set_authority(Some(&target.authority)).map_err(|()| failed("invalid authority"))?;
    request.set_path_with_query(Some(&target.path_with_query)).map_err(|()| failed("invalid path"))?;
    let outgoing = request.body().map_err(|()| failed("no request body"))?;

    let options = RequestOptions::new();
    let timeout = config.timeout_ms.saturating_mul(1_000_000);
    // A host may not support a timeout; the request then runs under the host's own deadline.
    let _ = options.set_connect_timeout(Some(timeout));
    let _ = options.set_first_byte_timeout(Some(timeout));
    let future =
        outgoing_handler::handle(request, Some(options)).map_err(|code| http_error(target, &code))?;

    // Stream the body, then finish it; a denied or failed request shows in the response future.
    let written = (|| {
        let stream = outgoing.write().map_err(|()| "no body stream".to_owned())?;
        for chunk in body.chunks(4096) {
            stream.blocking_write_and_flush(chunk).map_err(|e| format!("body write failed: {e:?}"))?;
        }
        drop(stream);
        OutgoingBody::finish(outgoing, None).map_err(|code| format!("body failed: {code:?}"))
    })();

    let response = loop {
        match future.get() {
            Some(result) => break result,
            None => future.subscribe().block(),
        }
    };
    let response = match response {
        Ok(Ok(response)) => response,
        Ok(Err(code)) => return Err(http_error(target, &code)),
        Err(()) => return Err(failed("response already taken")),
    };
    written.map_err(|message| failed(&message))?;
    let status = response.status();
    if (200..300).contains(&status) { Ok(()) } else { Err(failed(&format!("answered {status}"))) }
}

struct Component;

impl Guest for Component {
    fn describe() -> PluginInfo {
        let param =
            |name: &str, kind: &str, required: bool, default: Option<&str>, description: &str| ConfigParam {
                name: name.into(),
                kind: kind.into(),
                required,
                default_value: default.map(Into::into),
                secret: false,
                description: description.into(),
            };
        PluginInfo {
            name: "http-sink".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "POSTs each flushed batch of change events as a JSON array to a URL".into(),
            config: vec![
                param(
                    "url",
                    "string",
                    true,
                    None,
                    "http(s) URL to POST to; its host must be in allowed_hosts",
                ),
                param(
                    "timeout_ms",
                    "integer",
                    false,
                    Some("900"),
                    "connect and first-byte timeout; keep under the call timeout",
                ),
            ],
            capabilities: vec!["http".into()],
        }
    }

    fn open(config: String) -> Result<(), PluginError> {
        let config: Config = serde_json::from_str(&config)
            .map_err(|e| error(ErrorClass::Fatal, format!("bad config: {e}")))?;
        let target = parse_url(&config.url).map_err(|message| error(ErrorClass::Fatal, message))?;
        host::log(Level::Info, &format!("http-sink posting to {}", config.url));
        STATE.with(|state| *state.borrow_mut() = Some(State { config, target, pending: Vec::new() }));
        Ok(())
    }

    fn write(records: Batch) -> Result<Vec<RecordError>, PluginError> {
        STATE.with(|state| {
            let mut state = state.borrow_mut();
            let state = state.as_mut().ok_or_else(|| error(ErrorClass::Fatal, "write before open"))?;
            let mut refused = Vec::new();
            let mut start = 0usize;
            for (index, end) in records.ends.iter().enumerate() {
                let end = *end as usize;
                let bytes = records.data.get(start..end).unwrap_or_default();
                start = end;
                match serde_json::from_slice::<serde_json::Value>(bytes) {
                    Ok(event) if event.is_object() => state.pending.push(bytes.to_vec()),
                    _ => refused.push(RecordError {
                        index: index as u32,
                        error: error(ErrorClass::Poison, "not a JSON event"),
                    }),
                }
            }
            Ok(refused)
        })
    }

    fn flush(_checkpoint: String) -> Result<(), PluginError> {
        STATE.with(|state| {
            let mut state = state.borrow_mut();
            let state = state.as_mut().ok_or_else(|| error(ErrorClass::Fatal, "flush before open"))?;
            if state.pending.is_empty() {
                return Ok(());
            }
            post(&state.config, &state.target, &json_array(&state.pending))?;
            state.pending.clear();
            Ok(())
        })
    }

    fn health() -> Result<(), String> {
        STATE.with(|state| if state.borrow().is_some() { Ok(()) } else { Err("not open".into()) })
    }

    fn close() {
        STATE.with(|state| drop(state.borrow_mut().take()));
    }
}

export!(Component);
