//! What the benchmark programs share.

use std::process::Command;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use tpchgen::generators::LineItemGenerator;
use tpchgen_arrow::LineItemArrow;

/// TPC-H lineitem at scale factor `sf`, generated in process.
#[allow(dead_code)]
pub fn lineitem(sf: f64) -> anyhow::Result<(SchemaRef, Vec<RecordBatch>)> {
    use datafusion::arrow::record_batch::RecordBatchReader;
    let generator = LineItemArrow::new(LineItemGenerator::new(sf, 1, 1)).with_batch_size(64 * 1024);
    let schema = generator.schema();
    Ok((schema, generator.collect::<Result<Vec<_>, _>>()?))
}

#[allow(dead_code)]
/// Runs a DuckDB reference script with python3 and returns the numbers it
/// prints, or None (saying why) when python or its duckdb package is
/// missing or the script fails.
pub fn duckdb_numbers(script: &str) -> Option<Vec<f64>> {
    let out = match Command::new("python3").args(["-c", script]).output() {
        Ok(out) if out.status.success() => out,
        Ok(out) => {
            println!(
                "DuckDB reference skipped: {} (pip install duckdb)",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            );
            return None;
        }
        Err(e) => {
            println!("DuckDB reference skipped: {e} (pip install duckdb)");
            return None;
        }
    };
    Some(
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect(),
    )
}

/// The `quiver` binary built next to this example (same profile).
#[allow(dead_code)]
pub fn quiver_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(|p| p.parent())
        .expect("target dir")
        .join("quiver")
}

/// The port a `quiver serve --listen 127.0.0.1:0` child printed.
#[allow(dead_code)]
pub fn read_port(child: &mut std::process::Child) -> anyhow::Result<u16> {
    use std::io::{BufRead, BufReader};
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line)?;
    let addr = line
        .trim()
        .strip_prefix("QuiverDB listening on ")
        .ok_or_else(|| anyhow::anyhow!("server did not start: {line:?}"))?;
    Ok(addr.rsplit(':').next().unwrap().parse()?)
}

/// A throwaway PostgreSQL server on loopback (Debian's `postgresql`
/// package), stopped when dropped.
#[allow(dead_code)]
pub struct Postgres {
    child: std::process::Child,
    pub port: u16,
    pg_ctl: std::path::PathBuf,
    data: std::path::PathBuf,
}

#[allow(dead_code)]
impl Postgres {
    /// `runuser` does not pass signals on; pg_ctl stops the server itself.
    pub fn stop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(&self.pg_ctl)
            .arg("-D")
            .arg(&self.data)
            .args(["stop", "-m", "fast"])
            .stdout(std::process::Stdio::null())
            .status();
        let _ = self.child.wait();
    }

    /// A tokio-postgres connection string for the superuser.
    pub fn conninfo(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.stop();
        }
    }
}

/// Starts PostgreSQL in `work/pgdata` with its default durability (fsync
/// on, synchronous_commit on) and the extra `-c` settings given.
#[allow(dead_code)]
pub fn postgres_reference(work: &std::path::Path, settings: &[&str]) -> Result<Postgres, String> {
    use std::process::Stdio;
    use std::time::Duration;
    let bin = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("no /usr/lib/postgresql: {e}"))?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .find(|p| p.join("initdb").exists())
        .ok_or("initdb not found")?;
    let data = work.join("pgdata");
    std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
    Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(work)
        .status()
        .map_err(|e| e.to_string())?;
    let status = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin.join("initdb"))
        .args(["-A", "trust", "-U", "postgres", "-D"])
        .arg(&data)
        .stdout(Stdio::null())
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("initdb failed".into());
    }
    let port = 54329;
    let mut command = Command::new("runuser");
    command
        .args(["-u", "postgres", "--"])
        .arg(bin.join("postgres"))
        .arg("-D")
        .arg(&data)
        .args([
            "-p",
            &port.to_string(),
            "-c",
            "listen_addresses=127.0.0.1",
            "-k",
        ])
        .arg(work);
    for setting in settings {
        command.args(["-c", setting]);
    }
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            std::thread::sleep(Duration::from_millis(500));
            return Ok(Postgres {
                child,
                port,
                pg_ctl: bin.join("pg_ctl"),
                data,
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err("PostgreSQL did not start".into())
}
