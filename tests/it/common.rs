//! Shared test support: a real `quiver serve` process on a free port.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A `quiver serve` child process, killed (SIGKILL) when dropped.
pub struct TestServer {
    child: Option<Child>,
    pub port: u16,
    /// The Flight SQL port, when started with `--flight-listen`.
    pub flight_port: Option<u16>,
}

impl TestServer {
    /// An in-memory server on an OS-chosen port.
    pub fn start() -> TestServer {
        TestServer::start_with(&["--memory"])
    }

    pub fn start_with(extra: &[&str]) -> TestServer {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        TestServer::start_command(&args)
    }

    /// Runs `quiver ARGS` and waits for it to say where it listens (lines
    /// printed before that are skipped).
    pub fn start_command(args: &[&str]) -> TestServer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_quiver"))
            .args(args)
            .env("QUIVER_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start quiver");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut seen = Vec::new();
        let port = loop {
            let mut line = String::new();
            let n = stdout
                .read_line(&mut line)
                .expect("read the listening line");
            if n == 0 {
                panic!("quiver {args:?} ended before listening; it printed {seen:?}");
            }
            if let Some(addr) = line.trim().strip_prefix("QuiverDB listening on ") {
                break addr.rsplit(':').next().unwrap().parse().expect("port");
            }
            seen.push(line);
        };
        let mut flight_port = None;
        if args.contains(&"--flight-listen") {
            loop {
                let mut line = String::new();
                if stdout.read_line(&mut line).expect("read the Flight line") == 0 {
                    panic!("quiver {args:?} ended before serving Flight SQL");
                }
                if let Some(addr) = line
                    .trim()
                    .strip_prefix("QuiverDB Flight SQL listening on ")
                {
                    flight_port = Some(addr.rsplit(':').next().unwrap().parse().expect("port"));
                    break;
                }
            }
        }
        // Keep draining stdout so the server never blocks writing to it.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while stdout.read_line(&mut sink).is_ok_and(|n| n > 0) {
                sink.clear();
            }
        });
        TestServer {
            child: Some(child),
            port,
            flight_port,
        }
    }

    /// A placeholder for a server that has been killed.
    pub fn dead() -> TestServer {
        TestServer {
            child: None,
            port: 0,
            flight_port: None,
        }
    }

    pub fn conn_string(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=tester dbname=quiver",
            self.port
        )
    }

    pub async fn connect(&self) -> tokio_postgres::Client {
        self.try_connect(&self.conn_string())
            .await
            .expect("connect")
    }

    /// Connects with libpq-style `params` (which name this server's host
    /// and port), or says why the server refused.
    pub async fn try_connect(
        &self,
        params: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, connection) = tokio_postgres::connect(params, tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// Sends a signal and waits for the process to exit; returns its status.
    pub fn stop_with(&mut self, signal: &str) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("a running server");
        Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .expect("kill");
        child.wait().expect("wait")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The first line of a tool's output, or None when it is not installed.
pub fn tool_version(tool: &str) -> Option<String> {
    let out = Command::new(tool).arg("--version").output().ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    })
}

/// The first column of every row `sql` returns.
pub async fn first_column<T>(client: &tokio_postgres::Client, sql: &str) -> Vec<T>
where
    T: for<'a> tokio_postgres::types::FromSql<'a>,
{
    client
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}
