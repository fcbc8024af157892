//! `http-sink`: a cdc sink plugin, written with `cdc-sdk`, that POSTs change events to a URL
//! through wasi:http. `write`
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

use cdc_sdk::prelude::*;
use wasi::http::outgoing_handler;
use wasi::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme};

/// Under the host's default call deadline (1 s): a call blocked on HTTP past the plugin's
/// `call_timeout` traps when it returns.
const DEFAULT_TIMEOUT_MS: u64 = 900;

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

/// Where to post, and the events written since the last successful flush (each one wire record).
pub struct HttpSink {
    timeout_ms: u64,
    target: Target,
    pending: Vec<Vec<u8>>,
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
fn http_error(target: &Target, code: &ErrorCode) -> Error {
    match code {
        ErrorCode::HttpRequestDenied => Error::fatal(format!(
            "POST to `{0}` denied: host `{0}` was not granted to this plugin \
             (add it to plugin.allowed_hosts)",
            target.authority
        )),
        other => Error::retryable(format!("POST to `{}` failed: {other:?}", target.authority)),
    }
}

/// Sends `body` as one POST and waits for the answer's status.
fn post(timeout_ms: u64, target: &Target, body: &[u8]) -> Result<(), Error> {
    let failed = |what: &str| Error::retryable(format!("POST to `{}`: {what}", target.authority));
    let headers = Fields::from_list(&[("content-type".to_owned(), b"application/json".to_vec())])
        .map_err(|e| failed(&format!("bad header: {e:?}")))?;
    let request = OutgoingRequest::new(headers);
    request.set_method(&Method::Post).map_err(|()| failed("cannot set the method"))?;
    request.set_scheme(Some(&target.scheme)).map_err(|()| failed("cannot set the scheme"))?;
    request.set_authority(Some(&target.authority)).map_err(|()| failed("invalid authority"))?;
    request.set_path_with_query(Some(&target.path_with_query)).map_err(|()| failed("invalid path"))?;
    let outgoing = request.body().map_err(|()| failed("no request body"))?;

    let options = RequestOptions::new();
    let timeout = timeout_ms.saturating_mul(1_000_000);
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

impl Sink for HttpSink {
    fn open(config: Config) -> Result<Self, Error> {
        config.deny_unknown(&["url", "timeout_ms"])?;
        let url: String = config.get("url")?;
        let target = parse_url(&url).map_err(Error::fatal)?;
        cdc_sdk::log::info(format_args!("http-sink posting to {url}"));
        Ok(HttpSink {
            timeout_ms: config.get_or("timeout_ms", DEFAULT_TIMEOUT_MS)?,
            target,
            pending: Vec::new(),
        })
    }

    fn write(&mut self, events: Vec<Event>) -> Result<(), SinkError> {
        self.pending.extend(events.iter().map(Event::to_wire));
        Ok(())
    }

    fn flush(&mut self, _checkpoint: &str) -> Result<(), Error> {
        if self.pending.is_empty() {
            return Ok(());
        }
        post(self.timeout_ms, &self.target, &json_array(&self.pending))?;
        self.pending.clear();
        Ok(())
    }

    fn describe() -> PluginInfo {
        PluginInfo::new()
            .description("POSTs each flushed batch of change events as a JSON array to a URL")
            .param(
                ConfigParam::string("url")
                    .required()
                    .doc("http(s) URL to POST to; its host must be in allowed_hosts"),
            )
            .param(
                ConfigParam::integer("timeout_ms")
                    .default_json("900")
                    .doc("connect and first-byte timeout; keep under the call timeout"),
            )
            .capability("http")
    }
}

cdc_sdk::export_sink!(HttpSink);
