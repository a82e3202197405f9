//! Replication by WAL shipping, as PostgreSQL's streaming replication
//! does it, over the same port and login as clients:
//!
//! - A replica logs in with `replication=true` as a role with the
//!   REPLICATION attribute (or a superuser) and sends commands as simple
//!   queries: `IDENTIFY_SYSTEM`, `BASE_BACKUP [SLOT name]` (a checkpoint's
//!   manifest and files, in COPY OUT), `START_REPLICATION [SLOT name]
//!   [PHYSICAL] X/Y [TIMELINE n]` (COPY BOTH: the primary sends WAL as it
//!   is flushed, the replica answers how far it has written, flushed and
//!   applied it), and `TIMELINE_PROMOTED n` (a promoted replica telling
//!   its old primary that it was superseded).
//! - The messages inside COPY BOTH are PostgreSQL's: XLogData (`w`),
//!   keepalive (`k`) and standby status update (`r`). The WAL bytes are
//!   QuiverDB's own frames, so only a QuiverDB replica can use them.
//!
//! [`sender`] is the primary's side (driven by the wire front end);
//! [`replica`] is the replica's: base backup, streaming, applying,
//! promotion.

pub mod replica;
pub mod sender;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::engine::Lsn;
use crate::error::{QuiverError, Result};

/// Microseconds since 2000-01-01, PostgreSQL's clock on the wire.
pub fn pg_now() -> i64 {
    const PG_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;
    chrono::Utc::now().timestamp_micros() - PG_EPOCH_UNIX_MICROS
}

pub fn from_pg_time(micros: i64) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp_micros(micros + 946_684_800_000_000)
}

/// A replication command, as a replica sends it.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    IdentifySystem,
    BaseBackup {
        slot: Option<String>,
    },
    StartReplication {
        slot: Option<String>,
        start: Lsn,
        timeline: Option<u64>,
    },
    TimelinePromoted {
        timeline: u64,
        system_id: u64,
    },
}

fn syntax(message: String) -> QuiverError {
    QuiverError::InvalidStatement(message)
}

impl Command {
    /// Parses a command of a replication connection (keywords in any
    /// case, an optional trailing semicolon).
    pub fn parse(text: &str) -> Result<Command> {
        let text = text.trim().trim_end_matches(';').trim();
        let words: Vec<&str> = text.split_whitespace().collect();
        let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
        let upper: Vec<&str> = upper.iter().map(String::as_str).collect();
        let name = |word: &str| -> Result<String> {
            let name = word.trim_matches('"');
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(syntax(format!(
                    "invalid replication slot name \"{word}\": use letters, digits, _ and -"
                )));
            }
            Ok(name.to_string())
        };
        match upper.as_slice() {
            ["IDENTIFY_SYSTEM"] => Ok(Command::IdentifySystem),
            ["BASE_BACKUP"] => Ok(Command::BaseBackup { slot: None }),
            ["BASE_BACKUP", "SLOT", _] => Ok(Command::BaseBackup {
                slot: Some(name(words[2])?),
            }),
            ["START_REPLICATION", ..] => {
                let mut rest = &words[1..];
                let mut slot = None;
                if rest.first().is_some_and(|w| w.eq_ignore_ascii_case("SLOT")) {
                    let word = rest
                        .get(1)
                        .ok_or_else(|| syntax("START_REPLICATION SLOT needs a slot name".into()))?;
                    slot = Some(name(word)?);
                    rest = &rest[2..];
                }
                if rest
                    .first()
                    .is_some_and(|w| w.eq_ignore_ascii_case("PHYSICAL"))
                {
                    rest = &rest[1..];
                }
                let position = rest.first().ok_or_else(|| {
                    syntax("START_REPLICATION needs a start position (X/Y)".into())
                })?;
                let start = Lsn::parse(position).ok_or_else(|| {
                    syntax(format!(
                        "invalid WAL position \"{position}\": write it as X/Y in hexadecimal"
                    ))
                })?;
                rest = &rest[1..];
                let timeline = match rest {
                    [] => None,
                    [keyword, n] if keyword.eq_ignore_ascii_case("TIMELINE") => {
                        Some(n.parse().map_err(|_| {
                            syntax(format!("invalid timeline \"{n}\": a positive number"))
                        })?)
                    }
                    _ => {
                        return Err(syntax(format!(
                            "unexpected \"{}\" in START_REPLICATION",
                            rest.join(" ")
                        )))
                    }
                };
                Ok(Command::StartReplication {
                    slot,
                    start,
                    timeline,
                })
            }
            ["TIMELINE_PROMOTED", timeline, "SYSTEM", system] => Ok(Command::TimelinePromoted {
                timeline: timeline
                    .parse()
                    .map_err(|_| syntax(format!("invalid timeline \"{timeline}\"")))?,
                system_id: system
                    .parse()
                    .map_err(|_| syntax(format!("invalid system identifier \"{system}\"")))?,
            }),
            [] => Err(syntax("empty replication command".into())),
            _ => Err(syntax(format!(
                "\"{}\" is not a replication command: a replication connection takes \
                 IDENTIFY_SYSTEM, BASE_BACKUP and START_REPLICATION",
                words.first().copied().unwrap_or_default()
            ))),
        }
    }
}

/// XLogData: WAL bytes that start at `start`; `end` is how far the
/// sender's log is flushed.
pub fn xlog_data(start: Lsn, end: Lsn, data: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(25 + data.len());
    buf.put_u8(b'w');
    buf.put_u64(start.0);
    buf.put_u64(end.0);
    buf.put_i64(pg_now());
    buf.put_slice(data);
    buf.freeze()
}

/// Primary keepalive: how far the log is flushed; asks for a status
/// update when `reply` is set.
pub fn keepalive(end: Lsn, reply: bool) -> Bytes {
    let mut buf = BytesMut::with_capacity(18);
    buf.put_u8(b'k');
    buf.put_u64(end.0);
    buf.put_i64(pg_now());
    buf.put_u8(u8::from(reply));
    buf.freeze()
}

/// Standby status update: how far the replica has written, flushed and
/// applied the log.
pub fn status_update(write: Lsn, flush: Lsn, apply: Lsn, reply: bool) -> Bytes {
    let mut buf = BytesMut::with_capacity(34);
    buf.put_u8(b'r');
    buf.put_u64(write.0);
    buf.put_u64(flush.0);
    buf.put_u64(apply.0);
    buf.put_i64(pg_now());
    buf.put_u8(u8::from(reply));
    buf.freeze()
}

/// A message inside COPY BOTH, from either side.
#[derive(Debug, PartialEq)]
pub enum StreamMessage {
    XLogData {
        start: Lsn,
        end: Lsn,
        sent_at: i64,
        data: Bytes,
    },
    Keepalive {
        end: Lsn,
        reply: bool,
    },
    Status {
        write: Lsn,
        flush: Lsn,
        apply: Lsn,
        sent_at: i64,
    },
    /// Hot standby feedback: accepted and ignored (there is no vacuum to
    /// hold back).
    Feedback,
}

impl StreamMessage {
    pub fn parse(mut data: Bytes) -> Result<StreamMessage> {
        let malformed = |what: &str| {
            QuiverError::ProtocolViolation(format!(
                "malformed {what} message in the replication stream"
            ))
        };
        if data.is_empty() {
            return Err(malformed("empty"));
        }
        let kind = data.get_u8();
        Ok(match kind {
            b'w' => {
                if data.len() < 24 {
                    return Err(malformed("XLogData"));
                }
                StreamMessage::XLogData {
                    start: Lsn(data.get_u64()),
                    end: Lsn(data.get_u64()),
                    sent_at: data.get_i64(),
                    data,
                }
            }
            b'k' => {
                if data.len() != 17 {
                    return Err(malformed("keepalive"));
                }
                StreamMessage::Keepalive {
                    end: Lsn(data.get_u64()),
                    reply: {
                        data.advance(8);
                        data.get_u8() != 0
                    },
                }
            }
            b'r' => {
                if data.len() != 33 {
                    return Err(malformed("standby status update"));
                }
                StreamMessage::Status {
                    write: Lsn(data.get_u64()),
                    flush: Lsn(data.get_u64()),
                    apply: Lsn(data.get_u64()),
                    sent_at: data.get_i64(),
                }
            }
            b'h' => StreamMessage::Feedback,
            other => {
                return Err(QuiverError::ProtocolViolation(format!(
                    "unexpected message type \"{}\" in the replication stream",
                    (other as char).escape_default()
                )))
            }
        })
    }
}

/// Base backup messages in COPY OUT: the manifest (`M`), a file's header
/// (`F`: size, then path), its bytes (`D`, in order), the end (`E`).
pub mod backup_stream {
    pub const MANIFEST: u8 = b'M';
    pub const FILE: u8 = b'F';
    pub const DATA: u8 = b'D';
    pub const END: u8 = b'E';
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_as_postgres_writes_them() {
        assert_eq!(
            Command::parse("identify_system;").unwrap(),
            Command::IdentifySystem
        );
        assert_eq!(
            Command::parse("START_REPLICATION SLOT r1 PHYSICAL 1/2A TIMELINE 3").unwrap(),
            Command::StartReplication {
                slot: Some("r1".into()),
                start: Lsn(0x1_0000_002A),
                timeline: Some(3),
            }
        );
        assert_eq!(
            Command::parse("START_REPLICATION 0/0").unwrap(),
            Command::StartReplication {
                slot: None,
                start: Lsn(0),
                timeline: None,
            }
        );
        assert!(Command::parse("START_REPLICATION SLOT").is_err());
        assert!(Command::parse("START_REPLICATION 12").is_err());
        assert!(Command::parse("SELECT 1").is_err());
        assert!(Command::parse("BASE_BACKUP SLOT x'y").is_err());
    }

    #[test]
    fn stream_messages_round_trip_and_junk_is_refused() {
        let data = xlog_data(Lsn(5), Lsn(9), b"abcd");
        match StreamMessage::parse(data).unwrap() {
            StreamMessage::XLogData {
                start, end, data, ..
            } => {
                assert_eq!((start, end, &data[..]), (Lsn(5), Lsn(9), &b"abcd"[..]));
            }
            other => panic!("{other:?}"),
        }
        match StreamMessage::parse(status_update(Lsn(1), Lsn(2), Lsn(3), false)).unwrap() {
            StreamMessage::Status {
                write,
                flush,
                apply,
                ..
            } => assert_eq!((write, flush, apply), (Lsn(1), Lsn(2), Lsn(3))),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            StreamMessage::parse(keepalive(Lsn(7), true)).unwrap(),
            StreamMessage::Keepalive {
                end: Lsn(7),
                reply: true
            }
        );
        assert!(StreamMessage::parse(Bytes::from_static(b"r123")).is_err());
        assert!(StreamMessage::parse(Bytes::from_static(b"z")).is_err());
        assert!(StreamMessage::parse(Bytes::new()).is_err());
    }
}
