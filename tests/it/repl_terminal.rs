//! The interactive REPL in a real terminal (tmux): prompts, multi-line
//! input, tab completion, Ctrl-C cancelling a query, history.

use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    session: String,
}

impl Tmux {
    fn start(command: &str) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            println!("SKIPPED: tmux is not installed (apt-get install tmux); .ci/run installs it");
            return None;
        }
        let session = format!("quiver-test-{}", std::process::id());
        // CI has no terminal of its own; tmux needs a TERM to emulate.
        let term = std::env::var("TERM").unwrap_or_else(|_| "xterm-256color".into());
        let status = Command::new("tmux")
            .env("TERM", term)
            .args([
                "new-session",
                "-d",
                "-s",
                &session,
                "-x",
                "120",
                "-y",
                "50",
                command,
            ])
            .status()
            .unwrap();
        assert!(status.success());
        Some(Tmux { session })
    }

    /// Types `text` literally, then presses Enter.
    fn line(&self, text: &str) {
        self.keys(&["-l", text]);
        self.keys(&["Enter"]);
    }

    fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["send-keys", "-t", &self.session])
            .args(keys)
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen shows `text` `times` times.
    fn wait_for(&self, text: &str, times: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if screen.matches(text).count() >= times {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "never saw {text:?} x{times} on:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .status();
    }
}

#[test]
fn interactive_shell_completes_cancels_and_keeps_history() {
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history");
    let command = format!(
        "QUIVER_LOG=warn QUIVER_HISTORY={} {}",
        history.display(),
        env!("CARGO_BIN_EXE_quiver")
    );
    let Some(term) = Tmux::start(&command) else {
        return;
    };
    term.wait_for("quiver=>", 1);
    // tmux reads a trailing ';' as a command separator unless escaped.
    term.line("create table t (id int, name text)\\;");
    term.wait_for("CREATE TABLE", 1);
    term.line("insert into t values (1, 'a'),");
    term.wait_for("quiver->", 1);
    term.line("(2, 'b')\\;");
    term.wait_for("INSERT 0 2", 1);

    // A query running past a second shows a spinner; Ctrl-C stops it and
    // the shell stays.
    term.line("select count(*) from generate_series(1, 50000000000)\\;");
    term.wait_for("(Ctrl-C cancels)", 1);
    term.keys(&["C-c"]);
    term.wait_for("canceling statement due to user request", 1);

    // Tab completes keywords; the table name is typed.
    term.keys(&["-l", "sel"]);
    term.keys(&["Tab"]);
    term.line(" name from t order by id\\;");
    let screen = term.wait_for("(2 rows)", 1);
    assert!(
        screen.contains("select name from t order by id;"),
        "{screen}"
    );

    term.line("\\q");
    // The file appears before rustyline has finished writing it: wait for
    // the content, not the name.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let saved = std::fs::read_to_string(&history).unwrap_or_default();
        if saved.contains("create table t (id int, name text);") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "history was not saved; the file holds:\n{saved}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
