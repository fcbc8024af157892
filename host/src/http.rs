//! The host's HTTP clients (Kafka Connect, the Schema Registry, webhooks, Iceberg REST
//! catalogs) trust the operating system's roots, so that a private CA installed on the machine
//! or in the image works (`SSL_CERT_FILE` and `SSL_CERT_DIR` are honoured), the roots bundled
//! with the binary, and, per endpoint, the certificates of a CA file named in the config.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{BasicAuth, HttpEndpoint};

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The CA file cannot be read.
    #[error("cannot read the CA file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The CA file holds no usable certificate.
    #[error("the CA file {} holds no PEM certificate{}", path.display(), reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    NoCertificate {
        /// The file.
        path: PathBuf,
        /// The parser's complaint, if any.
        reason: Option<String>,
    },
    /// The TLS backend could not start.
    #[error("cannot build an HTTP client")]
    Build(#[source] reqwest::Error),
}

/// The certificates of the PEM file at `path` (one or more).
///
/// # Errors
///
/// [`Error::Read`] when the file cannot be read, [`Error::NoCertificate`] when it holds no
/// certificate.
pub fn ca_certificates(path: &Path) -> Result<Vec<reqwest::Certificate>, Error> {
    let pem = std::fs::read(path).map_err(|source| Error::Read { path: path.to_owned(), source })?;
    let no_certificate = |reason| Error::NoCertificate { path: path.to_owned(), reason };
    let certificates = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|error| no_certificate(Some(error.to_string())))?;
    if certificates.is_empty() {
        return Err(no_certificate(None));
    }
    Ok(certificates)
}

/// A client whose requests time out after `timeout`, trusting the roots described in the
/// module documentation and those of `ca_file`.
///
/// # Errors
///
/// See [`ca_certificates`]; [`Error::Build`] when the TLS backend cannot start.
pub fn client(timeout: Duration, ca_file: Option<&Path>) -> Result<reqwest::Client, Error> {
    let mut builder = reqwest::Client::builder().timeout(timeout).connect_timeout(timeout);
    if let Some(path) = ca_file {
        for certificate in ca_certificates(path)? {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder.build().map_err(Error::Build)
}

impl HttpEndpoint {
    /// A client for this endpoint (see [`client`]).
    ///
    /// # Errors
    ///
    /// As [`client`].
    pub fn client(&self, timeout: Duration) -> Result<reqwest::Client, Error> {
        client(timeout, self.ca_file.as_deref())
    }

    /// `request` with the endpoint's credentials.
    pub fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        with_basic_auth(request, self.basic_auth.as_ref())
    }
}

/// `request` with `auth`, when given.
pub fn with_basic_auth(
    request: reqwest::RequestBuilder,
    auth: Option<&BasicAuth>,
) -> reqwest::RequestBuilder {
    match auth {
        Some(auth) => request.basic_auth(&auth.username, Some(auth.password.expose())),
        None => request,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let error = client(Duration::from_secs(1), Some(&path)).unwrap_err().to_string();
        assert!(error.contains("ca.pem") && error.contains("no PEM certificate"), "{error}");
        let missing = dir.path().join("absent.pem");
        let error = client(Duration::from_secs(1), Some(&missing)).unwrap_err().to_string();
        assert!(error.contains("cannot read the CA file") && error.contains("absent.pem"), "{error}");
    }
}
