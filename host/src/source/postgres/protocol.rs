//! A replication connection to PostgreSQL (`replication=database`): the startup and
//! authentication (trust, cleartext, MD5, SCRAM-SHA-256), simple queries for the replication
//! commands, and the copy-both stream of `START_REPLICATION`. tokio-postgres has no replication
//! mode, so the project speaks this part of the protocol itself; messages are built and
//! passwords hashed with `postgres-protocol`, the codec tokio-postgres uses.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use postgres_protocol::authentication::{md5_hash, sasl};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::config::Secret;

/// The session settings of every connection the embedded source makes (replication, catalog,
/// snapshot): ISO dates in UTC, ISO-8601 intervals, exact floats, hex bytea, so that each
/// value's text form is the one `values` reads.
pub const SESSION_OPTIONS: &str =
    "-c DateStyle=ISO -c TimeZone=UTC -c IntervalStyle=iso_8601 -c extra_float_digits=3 -c bytea_output=hex";

/// How long connecting and authenticating may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

/// A failure of the replication connection.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The socket failed or closed.
    #[error("connection to {address} failed: {source}")]
    Io {
        /// `host:port`.
        address: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The server refused a command or the login.
    #[error("PostgreSQL said: {severity} {code}: {message}")]
    Server {
        /// `ERROR`, `FATAL`.
        severity: String,
        /// SQLSTATE.
        code: String,
        /// The message.
        message: String,
    },
    /// The server sent what the protocol does not allow here.
    #[error("unexpected reply from PostgreSQL: {0}")]
    Unexpected(String),
}

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Database.
    pub database: String,
    /// Login user (needs the REPLICATION attribute).
    pub user: String,
    /// Password.
    pub password: Secret,
}

impl ConnectOptions {
    fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// One backend message: its tag and body.
struct Frame {
    tag: u8,
    body: Bytes,
}

/// The receiving side of the socket, with its framing.
struct FrameReader {
    reader: BufReader<OwnedReadHalf>,
    address: String,
}

impl FrameReader {
    async fn read(&mut self) -> Result<Frame, ProtocolError> {
        let mut header = [0u8; 5];
        if let Err(source) = self.reader.read_exact(&mut header).await {
            return Err(ProtocolError::Io { address: self.address.clone(), source });
        }
        let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        let mut body = vec![0u8; length.saturating_sub(4)];
        if let Err(source) = self.reader.read_exact(&mut body).await {
            return Err(ProtocolError::Io { address: self.address.clone(), source });
        }
        Ok(Frame { tag: header[0], body: Bytes::from(body) })
    }

    /// Reads past notices and parameter reports to the next message that matters.
    async fn next(&mut self) -> Result<Frame, ProtocolError> {
        loop {
            let frame = self.read().await?;
            match frame.tag {
                b'N' | b'S' | b'K' => continue,
                b'E' => return Err(server_error(&frame.body)),
                _ => return Ok(frame),
            }
        }
    }
}

/// The socket: its framed receiving side and its sending side.
struct Wire {
    frames: FrameReader,
    writer: OwnedWriteHalf,
}

impl Wire {
    async fn send(&mut self, message: &[u8]) -> Result<(), ProtocolError> {
        send(&mut self.writer, &self.frames.address, message).await
    }

    async fn read(&mut self) -> Result<Frame, ProtocolError> {
        self.frames.read().await
    }

    async fn next(&mut self) -> Result<Frame, ProtocolError> {
        self.frames.next().await
    }
}

async fn send(writer: &mut OwnedWriteHalf, address: &str, message: &[u8]) -> Result<(), ProtocolError> {
    let result = writer.write_all(message).await;
    result.map_err(|source| ProtocolError::Io { address: address.to_owned(), source })
}

/// A replication connection in command mode.
pub struct ReplicationConnection {
    wire: Wire,
}

impl ReplicationConnection {
    /// Connects and logs in, with [`SESSION_OPTIONS`].
    pub async fn connect(options: &ConnectOptions) -> Result<Self, ProtocolError> {
        let address = options.address();
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, async {
            let stream = TcpStream::connect((options.host.as_str(), options.port))
                .await
                .map_err(|source| ProtocolError::Io { address: address.clone(), source })?;
            let _ = stream.set_nodelay(true);
            let (reader, writer) = stream.into_split();
            let frames = FrameReader { reader: BufReader::with_capacity(256 * 1024, reader), address };
            let mut wire = Wire { frames, writer };
            login(&mut wire, options).await?;
            Ok::<_, ProtocolError>(wire)
        })
        .await;
        match connected {
            Ok(wire) => Ok(ReplicationConnection { wire: wire? }),
            Err(_) => Err(ProtocolError::Io {
                address: options.address(),
                source: std::io::Error::new(std::io::ErrorKind::TimedOut, "connecting timed out"),
            }),
        }
    }

    /// Runs one command and returns the rows of its result, each column as text.
    pub async fn query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, ProtocolError> {
        let mut message = BytesMut::new();
        frontend::query(sql, &mut message).map_err(|error| ProtocolError::Unexpected(error.to_string()))?;
        self.wire.send(&message).await?;
        let mut rows = Vec::new();
        let mut failure = None;
        loop {
            let frame = match self.wire.read().await? {
                frame if frame.tag == b'E' => {
                    failure = Some(server_error(&frame.body));
                    continue;
                }
                frame => frame,
            };
            match frame.tag {
                b'D' => rows.push(data_row(frame.body)?),
                b'Z' => break,
                _ => {}
            }
        }
        failure.map_or(Ok(rows), Err)
    }

    /// Starts streaming `slot` from `start` with pgoutput over `publication`: the stream of
    /// messages, and the writer of status updates beside it.
    pub async fn start_replication(
        mut self,
        slot: &str,
        start: u64,
        publication: &str,
    ) -> Result<(ReplicationStream, StreamWriter), ProtocolError> {
        let sql = format!(
            "START_REPLICATION SLOT {} LOGICAL {} (proto_version '1', publication_names {})",
            quote_identifier(slot),
            format_lsn(start),
            quote_literal(&quote_identifier(publication)),
        );
        let mut message = BytesMut::new();
        frontend::query(&sql, &mut message).map_err(|error| ProtocolError::Unexpected(error.to_string()))?;
        self.wire.send(&message).await?;
        let frame = self.wire.next().await?;
        if frame.tag != b'W' {
            return Err(ProtocolError::Unexpected(format!(
                "expected copy-both after START_REPLICATION, got message '{}'",
                frame.tag as char
            )));
        }
        let Wire { frames, writer } = self.wire;
        let address = frames.address.clone();
        Ok((ReplicationStream { frames }, StreamWriter { writer, address }))
    }
}

/// What the server streams once replication started.
#[derive(Debug)]
pub enum StreamMessage {
    /// WAL data: one pgoutput message.
    XLogData {
        /// Where the message's WAL record starts.
        wal_start: u64,
        /// The pgoutput message.
        data: Bytes,
    },
    /// The server's heartbeat: it has sent everything up to `wal_end`.
    Keepalive {
        /// The server's current end of WAL.
        wal_end: u64,
        /// Whether the server asks for a status update at once.
        reply_requested: bool,
    },
}

/// The copy-both stream of a started replication.
pub struct ReplicationStream {
    frames: FrameReader,
}

/// Sends status updates on a started replication.
pub struct StreamWriter {
    writer: OwnedWriteHalf,
    address: String,
}

impl ReplicationStream {
    /// The next message; an error when the stream ended or failed.
    pub async fn next(&mut self) -> Result<StreamMessage, ProtocolError> {
        loop {
            let frame = self.frames.next().await?;
            match frame.tag {
                b'd' => {
                    let mut body = frame.body;
                    if body.is_empty() {
                        continue;
                    }
                    match body.get_u8() {
                        b'w' if body.len() >= 24 => {
                            let wal_start = body.get_u64();
                            let _wal_end = body.get_u64();
                            let _clock = body.get_i64();
                            return Ok(StreamMessage::XLogData { wal_start, data: body });
                        }
                        b'k' if body.len() >= 17 => {
                            let wal_end = body.get_u64();
                            let _clock = body.get_i64();
                            let reply_requested = body.get_u8() == 1;
                            return Ok(StreamMessage::Keepalive { wal_end, reply_requested });
                        }
                        other => {
                            return Err(ProtocolError::Unexpected(format!(
                                "unknown replication message '{}'",
                                other as char
                            )));
                        }
                    }
                }
                b'c' | b'C' | b'Z' => {
                    return Err(ProtocolError::Unexpected("the server ended the replication stream".into()));
                }
                _ => continue,
            }
        }
    }
}

impl StreamWriter {
    /// Tells the server how far WAL was received (`written`) and made durable (`flushed`):
    /// the slot keeps everything after `flushed`.
    pub async fn send_status(&mut self, written: u64, flushed: u64) -> Result<(), ProtocolError> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let clock = i64::try_from(now.as_micros()).unwrap_or(i64::MAX) - PG_EPOCH_OFFSET_MICROS;
        let mut payload = BytesMut::with_capacity(34);
        payload.put_u8(b'r');
        payload.put_u64(written);
        payload.put_u64(flushed);
        payload.put_u64(flushed);
        payload.put_i64(clock);
        payload.put_u8(0);
        let mut message = BytesMut::with_capacity(40);
        frontend::CopyData::new(&payload[..])
            .map_err(|error| ProtocolError::Unexpected(error.to_string()))?
            .write(&mut message);
        send(&mut self.writer, &self.address, &message).await
    }
}

/// The startup message and authentication, up to ReadyForQuery.
async fn login(wire: &mut Wire, options: &ConnectOptions) -> Result<(), ProtocolError> {
    let parameters = [
        ("user", options.user.as_str()),
        ("database", options.database.as_str()),
        ("replication", "database"),
        ("application_name", "cdc"),
        ("client_encoding", "UTF8"),
        ("options", SESSION_OPTIONS),
    ];
    let mut message = BytesMut::new();
    frontend::startup_message(parameters.iter().copied(), &mut message)
        .map_err(|error| ProtocolError::Unexpected(error.to_string()))?;
    wire.send(&message).await?;
    let password = options.password.expose().as_bytes();
    let mut scram: Option<sasl::ScramSha256> = None;
    loop {
        let frame = wire.next().await?;
        let mut body = frame.body.clone();
        match frame.tag {
            b'R' => {
                let mut reply = BytesMut::new();
                match body.get_i32() {
                    0 => continue,
                    3 => frontend::password_message(password, &mut reply),
                    5 => {
                        let mut salt = [0u8; 4];
                        body.copy_to_slice(&mut salt);
                        let hash = md5_hash(options.user.as_bytes(), password, salt);
                        frontend::password_message(hash.as_bytes(), &mut reply)
                    }
                    10 => {
                        let mechanisms = String::from_utf8_lossy(&body);
                        if !mechanisms.split('\0').any(|mechanism| mechanism == sasl::SCRAM_SHA_256) {
                            return Err(ProtocolError::Unexpected(format!(
                                "the server offers no supported SASL mechanism ({mechanisms})"
                            )));
                        }
                        let exchange = sasl::ScramSha256::new(password, sasl::ChannelBinding::unsupported());
                        let result = frontend::sasl_initial_response(
                            sasl::SCRAM_SHA_256,
                            exchange.message(),
                            &mut reply,
                        );
                        scram = Some(exchange);
                        result
                    }
                    11 => {
                        let exchange = scram.as_mut().ok_or_else(|| {
                            ProtocolError::Unexpected("SASL continue without a SASL start".into())
                        })?;
                        exchange
                            .update(&body)
                            .map_err(|error| ProtocolError::Unexpected(error.to_string()))?;
                        frontend::sasl_response(exchange.message(), &mut reply)
                    }
                    12 => {
                        let exchange = scram.as_mut().ok_or_else(|| {
                            ProtocolError::Unexpected("SASL final without a SASL start".into())
                        })?;
                        exchange
                            .finish(&body)
                            .map_err(|error| ProtocolError::Unexpected(error.to_string()))?;
                        continue;
                    }
                    other => {
                        return Err(ProtocolError::Unexpected(format!(
                            "unsupported authentication method {other}"
                        )));
                    }
                }
                .map_err(|error| ProtocolError::Unexpected(error.to_string()))?;
                wire.send(&reply).await?;
            }
            b'Z' => return Ok(()),
            other => {
                return Err(ProtocolError::Unexpected(format!("message '{}' during login", other as char)));
            }
        }
    }
}

/// A DataRow's columns as text.
fn data_row(mut body: Bytes) -> Result<Vec<Option<String>>, ProtocolError> {
    let truncated = || ProtocolError::Unexpected("truncated data row".into());
    if body.len() < 2 {
        return Err(truncated());
    }
    let count = body.get_u16();
    let mut columns = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        if body.len() < 4 {
            return Err(truncated());
        }
        let length = body.get_i32();
        if length < 0 {
            columns.push(None);
            continue;
        }
        let length = length as usize;
        if body.len() < length {
            return Err(truncated());
        }
        columns.push(Some(String::from_utf8_lossy(&body.split_to(length)).into_owned()));
    }
    Ok(columns)
}

/// An ErrorResponse as a [`ProtocolError::Server`].
fn server_error(body: &[u8]) -> ProtocolError {
    let (mut severity, mut code, mut message) = (String::new(), String::new(), String::new());
    for field in body.split(|byte| *byte == 0).filter(|field| !field.is_empty()) {
        let value = String::from_utf8_lossy(&field[1..]).into_owned();
        match field[0] {
            b'S' => severity = value,
            b'C' => code = value,
            b'M' => message = value,
            _ => {}
        }
    }
    ProtocolError::Server { severity, code, message }
}

/// `XXXXXXXX/XXXXXXXX`, PostgreSQL's form of an LSN.
pub fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

/// Reads PostgreSQL's form of an LSN.
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.split_once('/')?;
    Some((u64::from_str_radix(high, 16).ok()? << 32) | u64::from_str_radix(low, 16).ok()?)
}

/// A double-quoted identifier.
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A single-quoted literal.
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsns_read_and_print_as_postgresql_does() {
        assert_eq!(parse_lsn("16/B374D848"), Some(0x16_B374_D848));
        assert_eq!(format_lsn(0x16_B374_D848), "16/B374D848");
        assert_eq!(format_lsn(0), "0/0");
        assert_eq!(parse_lsn("nonsense"), None);
    }

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal(&quote_identifier("o'pub")), "'\"o''pub\"'");
    }

    #[test]
    fn data_rows_keep_nulls_apart_from_empty_text() {
        let mut body = BytesMut::new();
        body.put_u16(3);
        body.put_i32(2);
        body.put_slice(b"ab");
        body.put_i32(-1);
        body.put_i32(0);
        let row = data_row(body.freeze()).unwrap();
        assert_eq!(row, vec![Some("ab".to_owned()), None, Some(String::new())]);
    }
}
