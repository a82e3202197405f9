//! The write-ahead log: framed, checksummed records appended by one writer
//! thread that shares each fsync among every commit waiting for it (group
//! commit).
//!
//! Frame: `u32` payload length, `u32` CRC32C of the payload, payload (all
//! little-endian). Files are `wal/<epoch>.wal`; a checkpoint starts a new
//! epoch and deletes the files before it.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use crate::engine::commit::Commit;
use crate::engine::Lsn;
use crate::error::{QuiverError, Result};

/// With `synchronous_commit = off`, how long an acknowledged commit may stay
/// unsynced.
const ASYNC_FLUSH_INTERVAL: Duration = Duration::from_millis(200);
const FRAME_HEADER: usize = 8;

pub fn wal_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("wal")
}

pub fn wal_path(data_dir: &Path, epoch: u64) -> PathBuf {
    wal_dir(data_dir).join(format!("{epoch:016}.wal"))
}

/// Epochs of the WAL files present, in order.
pub fn wal_epochs(data_dir: &Path) -> Result<Vec<u64>> {
    let mut epochs = Vec::new();
    let dir = wal_dir(data_dir);
    if !dir.exists() {
        return Ok(epochs);
    }
    for entry in std::fs::read_dir(&dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(epoch) = name.strip_suffix(".wal").and_then(|n| n.parse().ok()) {
            epochs.push(epoch);
        }
    }
    epochs.sort_unstable();
    Ok(epochs)
}

enum Request {
    Append {
        /// The frame's bytes, in consecutive parts.
        frame: Vec<bytes::Bytes>,
        sync: bool,
        /// Answered with the position after the frame.
        done: oneshot::Sender<Lsn>,
    },
    /// A replica's copy of its primary's log: bytes that go at `at`
    /// (a new epoch starts a new file), not synced until a Flush.
    Mirror {
        at: Lsn,
        bytes: bytes::Bytes,
        done: mpsc::Sender<io::Result<()>>,
    },
    Rotate {
        epoch: u64,
        done: mpsc::Sender<io::Result<()>>,
    },
    Flush {
        done: mpsc::Sender<io::Result<()>>,
    },
}

/// Handle to the WAL writer thread.
#[derive(Debug)]
pub struct Wal {
    tx: mpsc::Sender<Request>,
    /// Where the next record goes.
    written: Arc<AtomicU64>,
    /// Everything before this position is on disk; WAL senders ship
    /// nothing past it.
    flushed: watch::Receiver<Lsn>,
}

/// Resolves to the position after a record once it is as durable as asked.
pub struct Appended(oneshot::Receiver<Lsn>);

impl Appended {
    pub async fn wait(self) -> Lsn {
        // The writer aborts the process rather than drop a request.
        self.0.await.unwrap_or_default()
    }
}

impl Wal {
    /// Starts the writer on `wal/<epoch>.wal`, appending to it if it exists.
    pub fn open(data_dir: &Path, epoch: u64) -> Result<Wal> {
        std::fs::create_dir_all(wal_dir(data_dir))?;
        let path = wal_path(data_dir, epoch);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        sync_dir(&wal_dir(data_dir))?;
        let at = Lsn::new(epoch, file.metadata()?.len());
        let written = Arc::new(AtomicU64::new(at.0));
        let (flushed_tx, flushed) = watch::channel(at);
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            data_dir: data_dir.to_path_buf(),
            file,
            epoch,
            size: at.offset(),
            written: written.clone(),
            flushed: flushed_tx,
            dirty: false,
        };
        std::thread::Builder::new()
            .name("quiver-wal".into())
            .spawn(move || writer.run(rx))?;
        Ok(Wal {
            tx,
            written,
            flushed,
        })
    }

    /// Queues a commit's record. Records are written in the order they are
    /// queued, so callers queue while holding the lock that orders them.
    pub fn append(&self, commit: &Commit, sync: bool) -> Result<Appended> {
        // The frame is written in parts (the rows' blobs are not copied
        // into one buffer): length and checksum, then the record.
        let parts = commit.encode_parts()?;
        let payload: usize = parts.iter().map(|p| p.len()).sum();
        let len = u32::try_from(payload).map_err(|_| {
            QuiverError::ProgramLimitExceeded(format!(
                "a transaction may write at most 4 GiB of rows to the log; this one writes {} MiB (load the data in several transactions)",
                payload >> 20
            ))
        })?;
        let crc = parts
            .iter()
            .fold(0, |crc, part| crc32c::crc32c_append(crc, part));
        let mut header = Vec::with_capacity(FRAME_HEADER);
        header.extend_from_slice(&len.to_le_bytes());
        header.extend_from_slice(&crc.to_le_bytes());
        let mut frame = Vec::with_capacity(1 + parts.len());
        frame.push(bytes::Bytes::from(header));
        frame.extend(parts);
        let (done, rx) = oneshot::channel();
        self.tx
            .send(Request::Append { frame, sync, done })
            .map_err(|_| QuiverError::Internal("the WAL writer has stopped".into()))?;
        Ok(Appended(rx))
    }

    /// Writes bytes of the primary's log at the same position in this
    /// replica's log (`at.epoch()` names the file). Not synced: call
    /// [`Wal::flush`].
    pub fn mirror(&self, at: Lsn, bytes: bytes::Bytes) -> Result<()> {
        let (done, rx) = mpsc::channel();
        self.tx
            .send(Request::Mirror { at, bytes, done })
            .map_err(|_| QuiverError::Internal("the WAL writer has stopped".into()))?;
        Ok(rx
            .recv()
            .map_err(|_| QuiverError::Internal("the WAL writer has stopped".into()))??)
    }

    /// Where the next record goes.
    pub fn written(&self) -> Lsn {
        Lsn(self.written.load(Ordering::Acquire))
    }

    /// Everything before this position is on disk.
    pub fn flushed(&self) -> Lsn {
        *self.flushed.borrow()
    }

    /// Changes whenever more of the log is on disk.
    pub fn watch_flushed(&self) -> watch::Receiver<Lsn> {
        self.flushed.clone()
    }

    /// Syncs what was written so far and continues in `wal/<epoch>.wal`.
    pub fn rotate(&self, epoch: u64) -> Result<()> {
        let (done, rx) = mpsc::channel();
        self.tx
            .send(Request::Rotate { epoch, done })
            .map_err(|_| QuiverError::Internal("the WAL writer has stopped".into()))?;
        Ok(rx
            .recv()
            .map_err(|_| QuiverError::Internal("the WAL writer has stopped".into()))??)
    }

    /// Syncs everything written so far.
    pub fn flush(&self) -> Result<()> {
        let (done, rx) = mpsc::channel();
        self.tx
            .send(Request::Flush { done })
            .map_err(|_| QuiverError::Internal("the WAL writer has stopped".into()))?;
        Ok(rx
            .recv()
            .map_err(|_| QuiverError::Internal("the WAL writer has stopped".into()))??)
    }

    /// Bytes written to the current epoch's file.
    pub fn size(&self) -> u64 {
        self.written().offset()
    }
}

struct Writer {
    data_dir: PathBuf,
    file: File,
    epoch: u64,
    /// Bytes in the current file.
    size: u64,
    written: Arc<AtomicU64>,
    flushed: watch::Sender<Lsn>,
    /// Written but not yet synced.
    dirty: bool,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Request>) {
        loop {
            let first = if self.dirty {
                match rx.recv_timeout(ASYNC_FLUSH_INTERVAL) {
                    Ok(request) => request,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        self.sync_or_die();
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(request) => request,
                    Err(_) => break,
                }
            };
            // Take everything already waiting: one write and one sync for all.
            let mut batch = vec![first];
            while let Ok(more) = rx.try_recv() {
                batch.push(more);
                if batch.len() >= 1024 {
                    break;
                }
            }
            self.handle(batch);
        }
        if self.dirty {
            self.sync_or_die();
        }
    }

    fn handle(&mut self, batch: Vec<Request>) {
        let mut waiting_for_sync = Vec::new();
        for request in batch {
            match request {
                Request::Append { frame, sync, done } => {
                    self.write_or_die(&frame);
                    let end = Lsn::new(self.epoch, self.size);
                    if sync {
                        waiting_for_sync.push((done, end));
                    } else {
                        let _ = done.send(end);
                    }
                }
                Request::Mirror { at, bytes, done } => {
                    let _ = done.send(self.mirror(at, bytes));
                }
                Request::Rotate { epoch, done } => {
                    self.sync_or_die();
                    let _ = done.send(self.rotate(epoch));
                }
                Request::Flush { done } => {
                    self.sync_or_die();
                    let _ = done.send(Ok(()));
                }
            }
        }
        if !waiting_for_sync.is_empty() {
            self.sync_or_die();
            for (done, end) in waiting_for_sync {
                let _ = done.send(end);
            }
        }
    }

    fn rotate(&mut self, epoch: u64) -> io::Result<()> {
        let path = wal_path(&self.data_dir, epoch);
        self.file = OpenOptions::new().create(true).append(true).open(path)?;
        sync_dir(&wal_dir(&self.data_dir))?;
        self.epoch = epoch;
        self.size = self.file.metadata()?.len();
        let at = Lsn::new(epoch, self.size);
        self.written.store(at.0, Ordering::Release);
        self.flushed.send_replace(at);
        Ok(())
    }

    /// A replica's copy of the primary's bytes at `at`: a later epoch
    /// closes this file (synced) and starts that one; the offset must be
    /// where this file ends (the stream has no gaps).
    fn mirror(&mut self, at: Lsn, bytes: bytes::Bytes) -> io::Result<()> {
        if at.epoch() != self.epoch {
            if at.epoch() < self.epoch || at.offset() != 0 {
                return Err(io::Error::other(format!(
                    "the primary sent WAL at {at}, but this replica's log continues at {}",
                    Lsn::new(self.epoch, self.size)
                )));
            }
            self.sync_or_die();
            // A file left from an earlier attempt holds nothing we keep.
            match std::fs::remove_file(wal_path(&self.data_dir, at.epoch())) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            self.rotate(at.epoch())?;
        }
        if at.offset() != self.size {
            return Err(io::Error::other(format!(
                "the primary sent WAL at {at}, but this replica's log continues at {}",
                Lsn::new(self.epoch, self.size)
            )));
        }
        self.write_or_die(&[bytes]);
        Ok(())
    }

    fn write_or_die(&mut self, frame: &[bytes::Bytes]) {
        let mut written = 0;
        for part in frame {
            if let Err(e) = self.file.write_all(part) {
                die(&e);
            }
            written += part.len();
        }
        self.size += written as u64;
        self.written
            .store(Lsn::new(self.epoch, self.size).0, Ordering::Release);
        crate::metrics::metrics().wal_written(written);
        self.dirty = true;
    }

    fn sync_or_die(&mut self) {
        if self.dirty {
            let started = std::time::Instant::now();
            if let Err(e) = self.file.sync_data() {
                die(&e);
            }
            crate::metrics::metrics().wal_fsync(started.elapsed());
            self.dirty = false;
        }
        let end = Lsn::new(self.epoch, self.size);
        self.flushed
            .send_if_modified(|at| std::mem::replace(at, end) != end);
    }
}

/// A failed WAL write or sync leaves memory ahead of the disk: continuing
/// could acknowledge commits that are not durable. Stop, as Postgres does;
/// recovery replays what reached the disk.
fn die(e: &io::Error) -> ! {
    tracing::error!("WAL write failed, stopping to protect committed data: {e}");
    eprintln!("quiver: WAL write failed: {e}; stopping");
    std::process::abort();
}

/// The first whole record in `bytes` (a stream of frames, as a WAL file
/// holds them) and its length in bytes; None until all of it is there.
pub fn next_frame(bytes: &[u8]) -> std::result::Result<Option<(Commit, usize)>, String> {
    if bytes.len() < FRAME_HEADER {
        return Ok(None);
    }
    let len = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    if bytes.len() < FRAME_HEADER + len {
        return Ok(None);
    }
    let payload = &bytes[FRAME_HEADER..FRAME_HEADER + len];
    if crc32c::crc32c(payload) != crc {
        return Err("a WAL record's checksum does not match".into());
    }
    Ok(Some((Commit::decode(payload)?, FRAME_HEADER + len)))
}

/// Whether `offset` is where a record starts (or the file ends) in the
/// WAL file at `path`, reading only the records' headers.
pub fn is_record_boundary(path: &Path, offset: u64) -> Result<bool> {
    use std::io::{Seek, SeekFrom};
    let mut file = File::open(path)?;
    let size = file.metadata()?.len();
    let mut at = 0u64;
    let mut header = [0u8; FRAME_HEADER];
    while at < offset {
        if at + FRAME_HEADER as u64 > size {
            return Ok(false);
        }
        file.seek(SeekFrom::Start(at))?;
        file.read_exact(&mut header)?;
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
        at += FRAME_HEADER as u64 + u64::from(len);
    }
    Ok(at == offset && offset <= size)
}

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// What reading one WAL file found.
pub struct WalContents {
    pub commits: Vec<Commit>,
    /// Length of the valid prefix.
    pub valid_len: u64,
    /// Bytes after the valid prefix: a record cut short by a crash.
    pub torn_bytes: u64,
    /// A damaged record with more data after it: the error that names the
    /// file and offset. `commits` are the records before it.
    pub damage: Option<QuiverError>,
}

impl WalContents {
    /// The records, or the damage as an error.
    pub fn intact(self) -> Result<WalContents> {
        match self.damage {
            Some(e) => Err(e),
            None => Ok(self),
        }
    }
}

/// Reads every record of a WAL file. A record cut short at the end is a
/// torn tail (reported, not damage); a bad record followed by more data is
/// damage, reported with the file and offset, and reading stops there.
pub fn read_wal(path: &Path) -> Result<WalContents> {
    read_wal_from(path, 0)
}

/// [`read_wal`] from the record at `start` on (a replica's checkpoint
/// ends in the middle of its primary's file).
pub fn read_wal_from(path: &Path, start: u64) -> Result<WalContents> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    let mut commits = Vec::new();
    let mut at = usize::try_from(start)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    let corrupt = |offset: usize, reason: String| QuiverError::Corrupt {
        path: path.display().to_string(),
        offset: offset as u64,
        reason,
    };
    let mut damage = None;
    while at < bytes.len() {
        let rest = bytes.len() - at;
        if rest < FRAME_HEADER {
            break;
        }
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap());
        if FRAME_HEADER + len > rest {
            break;
        }
        let payload = &bytes[at + FRAME_HEADER..at + FRAME_HEADER + len];
        let end = at + FRAME_HEADER + len;
        if crc32c::crc32c(payload) != crc {
            if end == bytes.len() || bytes[end..].iter().all(|b| *b == 0) {
                // The last record, half written when the process died.
                break;
            }
            damage = Some(corrupt(
                at,
                format!(
                    "checksum mismatch, with {} more byte(s) of log after this record",
                    bytes.len() - end
                ),
            ));
            break;
        }
        match Commit::decode(payload) {
            Ok(commit) => commits.push(commit),
            Err(reason) => {
                damage = Some(corrupt(at, reason));
                break;
            }
        }
        at = end;
    }
    let torn_bytes = match damage {
        Some(_) => 0,
        None => (bytes.len() - at) as u64,
    };
    Ok(WalContents {
        commits,
        valid_len: at as u64,
        torn_bytes,
        damage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::commit::Effect;

    fn commit(name: &str) -> Commit {
        Commit {
            effects: vec![Effect::CreateSchema { name: name.into() }],
            blobs: vec![],
        }
    }

    fn names(contents: &WalContents) -> Vec<String> {
        contents
            .commits
            .iter()
            .map(|c| match &c.effects[0] {
                Effect::CreateSchema { name } => name.clone(),
                _ => unreachable!(),
            })
            .collect()
    }

    #[tokio::test]
    async fn records_survive_and_a_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), 1).unwrap();
        for name in ["a", "b", "c"] {
            wal.append(&commit(name), true).unwrap().wait().await;
        }
        drop(wal);
        let path = wal_path(dir.path(), 1);
        let contents = read_wal(&path).unwrap();
        assert_eq!(names(&contents), vec!["a", "b", "c"]);
        // Reading from the second record's start, and checking where
        // records start.
        let second = read_wal(&path).unwrap().valid_len / 3;
        assert!(is_record_boundary(&path, second).unwrap());
        assert!(!is_record_boundary(&path, second + 1).unwrap());
        assert_eq!(
            names(&read_wal_from(&path, second).unwrap()),
            vec!["b", "c"]
        );
        let full = std::fs::metadata(&path).unwrap().len();
        // Cut the last record short, as a crash mid-write would.
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(full - 3).unwrap();
        let contents = read_wal(&path).unwrap();
        assert_eq!(names(&contents), vec!["a", "b"]);
        assert!(contents.torn_bytes > 0);
    }

    #[tokio::test]
    async fn a_corrupt_record_in_the_middle_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), 1).unwrap();
        for name in ["a", "b", "c"] {
            wal.append(&commit(name), true).unwrap().wait().await;
        }
        drop(wal);
        let path = wal_path(dir.path(), 1);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[FRAME_HEADER + 2] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
        let contents = read_wal(&path).unwrap();
        assert!(contents.commits.is_empty());
        let err = contents.intact().err().expect("corruption detected");
        assert!(err.to_string().contains("0000000000000001.wal"), "{err}");
    }
}
