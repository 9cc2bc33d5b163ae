//! The Kafka requests rskafka leaves out. Consumer-group offsets: find the group's coordinator
//! (FindCoordinator v1), read what the group committed (OffsetFetch v1) and commit new offsets as
//! a consumer outside any generation does (OffsetCommit v2, generation -1), the way
//! `kafka-consumer-groups --reset-offsets` and Spark's batch reads do. And a probe that tells a
//! broker asking for authentication from one that is down.
//!
//! Requests and answers are the protocol's fixed (non-flexible) encodings, written by hand: a
//! size, the request header (key, version, correlation id, client id), then the body.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

const FIND_COORDINATOR: i16 = 10;
const OFFSET_FETCH: i16 = 9;
const OFFSET_COMMIT: i16 = 8;
const METADATA: i16 = 3;
const API_VERSIONS: i16 = 18;
const CLIENT_ID: &str = "mlops";

/// A request body under construction.
#[derive(Default)]
struct Body(Vec<u8>);

impl Body {
    fn i8(&mut self, v: i8) -> &mut Self {
        self.0.extend(v.to_be_bytes());
        self
    }
    fn i16(&mut self, v: i16) -> &mut Self {
        self.0.extend(v.to_be_bytes());
        self
    }
    fn i32(&mut self, v: i32) -> &mut Self {
        self.0.extend(v.to_be_bytes());
        self
    }
    fn i64(&mut self, v: i64) -> &mut Self {
        self.0.extend(v.to_be_bytes());
        self
    }
    fn string(&mut self, s: &str) -> &mut Self {
        self.i16(i16::try_from(s.len()).unwrap_or(i16::MAX));
        self.0.extend(s.as_bytes());
        self
    }
    fn null_string(&mut self) -> &mut Self {
        self.i16(-1)
    }
}

/// An answer being read.
struct Answer<'a>(&'a [u8]);

impl Answer<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let (head, rest) = self.0.split_at_checked(N).ok_or("the answer ends early")?;
        self.0 = rest;
        head.try_into().map_err(|_| "the answer ends early".to_string())
    }
    fn i16(&mut self) -> Result<i16, String> {
        self.take().map(i16::from_be_bytes)
    }
    fn i32(&mut self) -> Result<i32, String> {
        self.take().map(i32::from_be_bytes)
    }
    fn i64(&mut self) -> Result<i64, String> {
        self.take().map(i64::from_be_bytes)
    }
    fn string(&mut self) -> Result<Option<String>, String> {
        let n = self.i16()?;
        if n < 0 {
            return Ok(None);
        }
        let (text, rest) = self.0.split_at_checked(n as usize).ok_or("the answer ends early")?;
        self.0 = rest;
        Ok(Some(String::from_utf8_lossy(text).into_owned()))
    }
    fn count(&mut self) -> Result<usize, String> {
        Ok(usize::try_from(self.i32()?).unwrap_or(0))
    }
}

/// Kafka's name for an error code (the ones a group's offsets meet), or the code.
fn error_name(code: i16) -> String {
    match code {
        3 => "UNKNOWN_TOPIC_OR_PARTITION".into(),
        14 => "COORDINATOR_LOAD_IN_PROGRESS".into(),
        15 => "COORDINATOR_NOT_AVAILABLE".into(),
        16 => "NOT_COORDINATOR".into(),
        22 => "ILLEGAL_GENERATION".into(),
        24 => "INVALID_GROUP_ID".into(),
        25 => "UNKNOWN_MEMBER_ID".into(),
        29 => "TOPIC_AUTHORIZATION_FAILED".into(),
        30 => "GROUP_AUTHORIZATION_FAILED".into(),
        other => format!("error code {other}"),
    }
}

/// One connection to a broker, requests answered in order.
struct Conn {
    stream: TcpStream,
    next_id: i32,
}

impl Conn {
    fn open(address: &str, timeout: Duration) -> Result<Conn, String> {
        let addrs: Vec<_> = address.to_socket_addrs().map_err(|e| format!("cannot resolve {address}: {e}"))?.collect();
        let mut last = format!("cannot resolve {address}");
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(stream) => {
                    stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
                    stream.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
                    return Ok(Conn { stream, next_id: 1 });
                }
                Err(e) => last = format!("cannot connect to {address}: {e}"),
            }
        }
        Err(last)
    }

    fn call(&mut self, key: i16, version: i16, body: &Body) -> Result<Vec<u8>, String> {
        let id = self.next_id;
        self.next_id += 1;
        let mut frame = Body::default();
        frame.i16(key).i16(version).i32(id).string(CLIENT_ID);
        frame.0.extend(&body.0);
        let size = i32::try_from(frame.0.len()).map_err(|_| "request too large".to_string())?;
        let io = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::BrokenPipe => "the broker closed the connection".to_string(),
            _ => format!("the broker connection failed: {e}"),
        };
        self.stream.write_all(&size.to_be_bytes()).map_err(io)?;
        self.stream.write_all(&frame.0).map_err(io)?;
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).map_err(io)?;
        let size = usize::try_from(i32::from_be_bytes(size)).map_err(|_| "a negative answer size".to_string())?;
        if size > 64 << 20 {
            return Err(format!("an answer of {size} bytes: not a Kafka broker?"));
        }
        let mut answer = vec![0u8; size];
        self.stream.read_exact(&mut answer).map_err(io)?;
        let mut reader = Answer(&answer);
        let got = reader.i32()?;
        if got != id {
            return Err(format!("answer {got} to request {id}"));
        }
        Ok(answer[4..].to_vec())
    }
}

/// Error codes worth another try (after finding the coordinator again): the coordinator is
/// still loading, not there yet (a new cluster creates its offsets topic on first use) or moved.
fn retriable(code: i16) -> bool {
    matches!(code, 14..=16)
}

/// A failed attempt: whether another one may succeed, and why it failed.
type Attempt<T> = Result<T, (bool, String)>;

/// The group's coordinator, reached through the first broker that answers.
pub(crate) struct Group {
    conn: Conn,
    group: String,
    brokers: Vec<String>,
    timeout: Duration,
}

/// Runs `attempt` until it succeeds, fails for good, or `timeout` has passed (backing off 50 ms,
/// doubling, between tries).
fn retried<T>(timeout: Duration, mut attempt: impl FnMut() -> Attempt<T>) -> Result<T, String> {
    let deadline = std::time::Instant::now() + timeout;
    let mut pause = Duration::from_millis(50);
    loop {
        match attempt() {
            Ok(v) => return Ok(v),
            Err((true, why)) if std::time::Instant::now() + pause < deadline => {
                tracing::debug!(%why, "group request retried");
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            Err((_, why)) => return Err(why),
        }
    }
}

fn find_coordinator(brokers: &[String], group: &str, timeout: Duration) -> Attempt<Conn> {
    let mut last = (false, String::from("no brokers given"));
    for broker in brokers {
        let found = Conn::open(broker, timeout).map_err(|e| (false, e)).and_then(|mut conn| {
            let mut body = Body::default();
            body.string(group).i8(0);
            let answer = conn.call(FIND_COORDINATOR, 1, &body).map_err(|e| (false, e))?;
            let mut a = Answer(&answer);
            let parsed = (|| {
                let _throttle = a.i32()?;
                let code = a.i16()?;
                let message = a.string()?;
                Ok::<_, String>((code, message, a.i32()?, a.string()?.unwrap_or_default(), a.i32()?))
            })();
            let (code, message, _node, host, port) = parsed.map_err(|e| (false, e))?;
            if code != 0 {
                return Err((
                    retriable(code),
                    format!(
                        "no coordinator for group {group:?}: {}{}",
                        error_name(code),
                        message.map(|m| format!(" ({m})")).unwrap_or_default()
                    ),
                ));
            }
            let at = format!("{host}:{port}");
            if &at == broker { Ok(conn) } else { Conn::open(&at, timeout).map_err(|e| (true, e)) }
        });
        match found {
            Ok(conn) => return Ok(conn),
            Err(e) => last = e,
        }
    }
    Err(last)
}

impl Group {
    /// Finds `group`'s coordinator through `brokers` and connects to it.
    pub(crate) fn connect(brokers: &[String], group: &str, timeout: Duration) -> Result<Group, String> {
        if group.is_empty() || group.len() > i16::MAX as usize {
            return Err(format!("group {group:?}: a group is named by 1 to 32767 bytes"));
        }
        let conn = retried(timeout, || find_coordinator(brokers, group, timeout))?;
        Ok(Group { conn, group: group.to_string(), brokers: brokers.to_vec(), timeout })
    }

    /// Sends one request to the coordinator; a retriable error code in the answer (as `check`
    /// reads it) finds the coordinator again and tries again, until the timeout.
    fn ask<T>(
        &mut self,
        (key, version): (i16, i16),
        body: &Body,
        check: impl Fn(&[u8]) -> Attempt<T>,
    ) -> Result<T, String> {
        let (brokers, group, timeout) = (self.brokers.clone(), self.group.clone(), self.timeout);
        let conn = &mut self.conn;
        retried(timeout, || {
            let answer = conn.call(key, version, body).map_err(|e| (true, e))?;
            match check(&answer) {
                Err((true, why)) => {
                    *conn = find_coordinator(&brokers, &group, timeout)?;
                    Err((true, why))
                }
                other => other,
            }
        })
    }

    /// The offsets the group committed for `partitions` of `topic` (the next offset to read);
    /// partitions without one are left out.
    pub(crate) fn committed(&mut self, topic: &str, partitions: &[i32]) -> Result<BTreeMap<i32, i64>, String> {
        let mut body = Body::default();
        body.string(&self.group).i32(1).string(topic).i32(partitions.len() as i32);
        for p in partitions {
            body.i32(*p);
        }
        let group = self.group.clone();
        self.ask((OFFSET_FETCH, 1), &body, |answer| {
            let mut a = Answer(answer);
            let mut out = BTreeMap::new();
            let bad = |e: String| (false, e);
            for _ in 0..a.count().map_err(bad)? {
                let _name = a.string().map_err(bad)?;
                for _ in 0..a.count().map_err(bad)? {
                    let (partition, offset) = (a.i32().map_err(bad)?, a.i64().map_err(bad)?);
                    let (_meta, code) = (a.string().map_err(bad)?, a.i16().map_err(bad)?);
                    if code != 0 {
                        return Err((
                            retriable(code),
                            format!("reading group {group:?}'s offsets: {}", error_name(code)),
                        ));
                    }
                    if offset >= 0 {
                        out.insert(partition, offset);
                    }
                }
            }
            Ok(out)
        })
    }

    /// Commits `offsets` (the next offset to read, per partition) for `topic`.
    pub(crate) fn commit(&mut self, topic: &str, offsets: &BTreeMap<i32, i64>) -> Result<(), String> {
        let mut body = Body::default();
        body.string(&self.group).i32(-1).string("").i64(-1).i32(1).string(topic).i32(offsets.len() as i32);
        for (p, o) in offsets {
            body.i32(*p).i64(*o).null_string();
        }
        let group = self.group.clone();
        self.ask((OFFSET_COMMIT, 2), &body, |answer| {
            let mut a = Answer(answer);
            let bad = |e: String| (false, e);
            for _ in 0..a.count().map_err(bad)? {
                let _name = a.string().map_err(bad)?;
                for _ in 0..a.count().map_err(bad)? {
                    let (partition, code) = (a.i32().map_err(bad)?, a.i16().map_err(bad)?);
                    if code != 0 {
                        return Err((
                            retriable(code),
                            format!(
                                "committing group {group:?}'s offset of partition {partition}: {}",
                                error_name(code)
                            ),
                        ));
                    }
                }
            }
            Ok(())
        })
    }
}

/// Whether `broker` answers the handshake (ApiVersions) but hangs up on a plain request
/// (Metadata): what a listener that requires SASL authentication does to a client that skips it.
pub(crate) fn wants_authentication(broker: &str, timeout: Duration) -> bool {
    let Ok(mut conn) = Conn::open(broker, timeout) else { return false };
    if conn.call(API_VERSIONS, 0, &Body::default()).is_err() {
        return false;
    }
    let mut all_topics = Body::default();
    all_topics.i32(-1);
    // Hung up on: the answer never starts (end of file, reset), as opposed to a slow answer.
    conn.call(METADATA, 1, &all_topics).is_err_and(|e| e.contains("closed the connection"))
}
