//! The interactive shell: rustyline on top of an embedded `Session`, with
//! psql-style output and a few backslash commands.
//!
//! Interactive use reads line by line with history and completion; piped
//! input runs as a script and stops at the first error with exit status 1.
//!
//! Over 800 lines: the shell's loop, its backslash commands and their
//! completion share the shell's state.

mod format;
mod remote;

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{Editor, Helper, Highlighter, Hinter, Validator};

use crate::engine::types::display_type;
use crate::engine::{Database, QualifiedName};
use crate::error::{QuiverError, Result};
use crate::session::{Session, StatementResult};
use crate::sql::types::format_options;
pub use format::{render_table, render_table_with, Mode, ResultSet};

/// How the shell starts: output format (`--format`, `\pset format`).
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub mode: Mode,
    pub expanded: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: Mode::Aligned,
            expanded: false,
        }
    }
}

/// Runs the shell on `db` until `\q`, end of input, or (for scripts) the
/// first error.
pub fn run(
    db: Arc<Database>,
    runtime: &tokio::runtime::Runtime,
    options: Options,
) -> anyhow::Result<ExitCode> {
    let backend = Backend::Embedded(Box::new(Session::new(db.clone())));
    Shell::new(backend, runtime, options).start(Some(db))
}

/// Runs the shell against a running server (`quiver repl postgres://...`).
pub fn run_remote(
    url: &str,
    runtime: &tokio::runtime::Runtime,
    options: Options,
) -> anyhow::Result<ExitCode> {
    let interactive = std::io::stdin().is_terminal();
    let ask = |prompt: &str| {
        if interactive {
            rpassword::prompt_password(prompt).ok()
        } else {
            None
        }
    };
    let remote = runtime
        .block_on(remote::Remote::connect(url, ask))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let backend = Backend::Remote(Box::new(remote));
    Shell::new(backend, runtime, options).start(None)
}

/// Where statements run: an embedded session, or a server over the wire.
enum Backend {
    Embedded(Box<Session>),
    Remote(Box<remote::Remote>),
}

/// What a statement gives the shell to print.
pub enum Output {
    Rows(ResultSet),
    /// A command tag, e.g. "INSERT 0 2".
    Command(String),
    /// Text printed as is (COPY ... TO STDOUT data).
    Text(String),
    Notice(String),
    /// "ERROR:  ..." as psql prints it.
    Error(String),
}

struct Shell<'r> {
    backend: Backend,
    runtime: &'r tokio::runtime::Runtime,
    timing: bool,
    interactive: bool,
    options: Options,
    /// `\o FILE`: query output goes there instead of stdout.
    output_file: Option<std::fs::File>,
}

/// What a complete input (a statement or a backslash command) asks for.
enum Flow {
    Continue,
    Quit,
}

impl<'r> Shell<'r> {
    fn new(backend: Backend, runtime: &'r tokio::runtime::Runtime, options: Options) -> Self {
        Shell {
            backend,
            runtime,
            timing: false,
            interactive: std::io::stdin().is_terminal(),
            options,
            output_file: None,
        }
    }

    fn start(mut self, db: Option<Arc<Database>>) -> anyhow::Result<ExitCode> {
        if self.interactive {
            self.interactive_loop(db)
        } else {
            let mut script = String::new();
            std::io::stdin().read_to_string(&mut script)?;
            Ok(if self.run_script(&script) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }

    fn interactive_loop(&mut self, db: Option<Arc<Database>>) -> anyhow::Result<ExitCode> {
        let mut editor: Editor<ShellHelper, DefaultHistory> = Editor::new()?;
        editor.set_helper(Some(ShellHelper { db }));
        let history = history_path();
        if let Some(path) = &history {
            let _ = editor.load_history(path);
        }
        let target = match &self.backend {
            Backend::Embedded(_) => String::new(),
            Backend::Remote(remote) => format!(" connected to {}", remote.describe),
        };
        println!(
            "QuiverDB {} shell{target}. End statements with ';'. \\? for help, \\q to quit.",
            env!("CARGO_PKG_VERSION")
        );
        let mut buffer = String::new();
        loop {
            let prompt = if buffer.is_empty() {
                "quiver=> "
            } else {
                "quiver-> "
            };
            match editor.readline(prompt) {
                Ok(line) => {
                    if buffer.is_empty() && line.trim_start().starts_with('\\') {
                        let _ = editor.add_history_entry(line.as_str());
                        match self.meta_command(line.trim()) {
                            Ok(Flow::Quit) => break,
                            Ok(Flow::Continue) => {}
                            Err(e) => print_error(&e),
                        }
                        continue;
                    }
                    buffer.push_str(&line);
                    buffer.push('\n');
                    if statement_complete(&buffer) {
                        let sql = std::mem::take(&mut buffer);
                        let _ = editor.add_history_entry(sql.trim());
                        self.execute(&sql);
                    }
                }
                // Ctrl-C at the prompt discards the statement being typed.
                Err(ReadlineError::Interrupted) => buffer.clear(),
                Err(ReadlineError::Eof) => break,
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(path) = &history {
            let _ = editor.save_history(path);
        }
        Ok(ExitCode::SUCCESS)
    }

    /// Runs a script; returns false at the first error.
    fn run_script(&mut self, script: &str) -> bool {
        let mut buffer = String::new();
        for line in script.lines() {
            if buffer.trim().is_empty() && line.trim_start().starts_with('\\') {
                match self.meta_command(line.trim()) {
                    Ok(Flow::Quit) => return true,
                    Ok(Flow::Continue) => continue,
                    Err(e) => {
                        print_error(&e);
                        return false;
                    }
                }
            }
            buffer.push_str(line);
            buffer.push('\n');
            if statement_complete(&buffer) {
                let sql = std::mem::take(&mut buffer);
                if !self.execute(&sql) {
                    return false;
                }
            }
        }
        if buffer.trim().is_empty() || only_comments(&buffer) {
            true
        } else {
            self.execute(&buffer)
        }
    }

    /// Executes SQL text and prints its results; returns false on error.
    fn execute(&mut self, sql: &str) -> bool {
        let started = Instant::now();
        let outputs = self.run_sql(sql);
        let mut ok = true;
        for output in outputs {
            match output {
                Output::Rows(set) => {
                    let text = format::render(&set, self.options.mode, self.options.expanded);
                    // psql separates an aligned table from what follows.
                    let gap = if self.options.mode == Mode::Aligned {
                        "\n"
                    } else {
                        ""
                    };
                    self.write_output(&format!("{text}{gap}"));
                }
                Output::Command(tag) => self.write_output(&format!("{tag}\n")),
                Output::Text(text) => self.write_output(&text),
                Output::Notice(text) => eprintln!("{text}"),
                Output::Error(text) => {
                    eprintln!("{text}");
                    ok = false;
                }
            }
        }
        if self.timing {
            println!("Time: {:.3} ms", started.elapsed().as_secs_f64() * 1000.0);
        }
        ok
    }

    /// Runs SQL on the backend. Interactively, Ctrl-C cancels it, and a
    /// spinner shows on stderr once it has run for a second.
    fn run_sql(&mut self, sql: &str) -> Vec<Output> {
        let interactive = self.interactive;
        let spinner = indicatif::ProgressBar::hidden();
        let show_spinner = async {
            if !interactive || !std::io::stderr().is_terminal() {
                return std::future::pending().await;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            spinner.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            spinner.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} running for {elapsed} (Ctrl-C cancels)",
                )
                .expect("a valid template"),
            );
            spinner.enable_steady_tick(Duration::from_millis(120));
            std::future::pending::<()>().await
        };
        let outputs = match &mut self.backend {
            Backend::Embedded(session) => {
                let session = session.as_mut();
                let results = self.runtime.block_on(async {
                    tokio::select! {
                        results = async {
                            let mut collected = Vec::new();
                            for result in session.execute_sql(sql).await {
                                collected.push(match result {
                                    Ok(result) => result.collected().await,
                                    Err(e) => Err(e),
                                });
                            }
                            collected
                        } => Some(results),
                        _ = show_spinner => None,
                        _ = ctrl_c(interactive) => None,
                    }
                });
                match results {
                    Some(results) => {
                        let options = format_options(session.settings());
                        results
                            .into_iter()
                            .map(|r| embedded_output(r, &options))
                            .collect()
                    }
                    None => vec![Output::Error(format!(
                        "ERROR:  {}",
                        QuiverError::QueryCanceled
                    ))],
                }
            }
            Backend::Remote(remote) => {
                let remote = remote.as_mut();
                let cancel = remote.cancel_handle();
                self.runtime.block_on(async {
                    let query = remote.query(sql);
                    tokio::pin!(query);
                    let outcome = tokio::select! {
                        outcome = &mut query => Some(outcome),
                        _ = show_spinner => None,
                        _ = ctrl_c(interactive) => None,
                    };
                    let outcome = match outcome {
                        Some(outcome) => outcome,
                        // Ask the server to cancel, then read its answer
                        // (57014) so the connection stays in step.
                        None => {
                            cancel.send().await;
                            query.await
                        }
                    };
                    outcome.unwrap_or_else(|e| vec![Output::Error(format!("ERROR:  {e}"))])
                })
            }
        };
        spinner.finish_and_clear();
        outputs
    }

    /// Query output: to the `\o` file when one is open, else stdout.
    fn write_output(&mut self, text: &str) {
        let written = match &mut self.output_file {
            Some(file) => file.write_all(text.as_bytes()),
            None => {
                let mut stdout = std::io::stdout().lock();
                stdout
                    .write_all(text.as_bytes())
                    .and_then(|_| stdout.flush())
            }
        };
        if let Err(e) = written {
            eprintln!("could not write output: {e}");
        }
    }

    fn meta_command(&mut self, line: &str) -> Result<Flow> {
        let mut parts = line.splitn(2, char::is_whitespace);
        let command = parts.next().unwrap_or_default();
        let arg = parts.next().map(str::trim).unwrap_or_default();
        let on_off = |arg: &str, current: bool| match arg {
            "on" => Ok(true),
            "off" => Ok(false),
            "" => Ok(!current),
            other => Err(QuiverError::Syntax(format!(
                "unrecognized value \"{other}\": expected on or off"
            ))),
        };
        match command {
            "\\q" | "\\quit" => return Ok(Flow::Quit),
            "\\timing" => {
                self.timing = on_off(arg, self.timing)?;
                println!("Timing is {}.", if self.timing { "on" } else { "off" });
            }
            "\\x" => {
                self.options.expanded = on_off(arg, self.options.expanded)?;
                println!(
                    "Expanded display is {}.",
                    if self.options.expanded { "on" } else { "off" }
                );
            }
            "\\pset" => {
                let mut words = arg.split_whitespace();
                match (words.next(), words.next()) {
                    (Some("format"), Some(name)) => {
                        self.options.mode = Mode::parse(name).ok_or_else(|| {
                            QuiverError::Syntax(format!(
                                "\\pset: allowed formats are aligned, csv, json (not \"{name}\")"
                            ))
                        })?;
                        println!("Output format is {}.", self.options.mode.name());
                    }
                    (Some("format"), None) => {
                        println!("Output format is {}.", self.options.mode.name())
                    }
                    (Some("expanded"), value) => {
                        self.options.expanded =
                            on_off(value.unwrap_or_default(), self.options.expanded)?;
                        println!(
                            "Expanded display is {}.",
                            if self.options.expanded { "on" } else { "off" }
                        );
                    }
                    _ => {
                        return Err(QuiverError::Syntax(
                            "\\pset takes format [aligned|csv|json] or expanded [on|off]".into(),
                        ))
                    }
                }
            }
            "\\csv" => {
                self.options.mode = Mode::Csv;
                println!("Output format is csv.");
            }
            "\\json" => {
                self.options.mode = Mode::Json;
                println!("Output format is json.");
            }
            "\\o" | "\\out" => {
                self.output_file = if arg.is_empty() {
                    None
                } else {
                    Some(std::fs::File::create(arg).map_err(|e| {
                        QuiverError::Io(std::io::Error::new(e.kind(), format!("{arg}: {e}")))
                    })?)
                };
            }
            "\\dt" => self.list_relations()?,
            "\\d" if arg.is_empty() => self.list_relations()?,
            "\\d" => self.describe(arg)?,
            "\\i" => {
                let script = std::fs::read_to_string(arg)?;
                if !self.run_script(&script) {
                    return Err(QuiverError::Internal(format!(
                        "{arg}: stopped at the first error"
                    )));
                }
            }
            "\\?" | "\\help" => println!("{HELP}"),
            other => {
                return Err(QuiverError::Syntax(format!(
                    "invalid command {other}; try \\? for help"
                )))
            }
        }
        Ok(Flow::Continue)
    }

    /// `\dt`: embedded, from the catalog; remote, from information_schema.
    fn list_relations(&mut self) -> Result<()> {
        match &self.backend {
            Backend::Embedded(session) => {
                let text = list_tables(session)?;
                print!("{text}");
                Ok(())
            }
            Backend::Remote(_) => {
                self.execute(
                    "SELECT table_schema AS \"Schema\", table_name AS \"Name\", \
                     CASE table_type WHEN 'BASE TABLE' THEN 'table' ELSE 'view' END AS \"Type\" \
                     FROM information_schema.tables \
                     WHERE table_schema NOT IN ('pg_catalog', 'information_schema') \
                     ORDER BY 1, 2;",
                );
                Ok(())
            }
        }
    }

    /// `\d NAME`.
    fn describe(&mut self, name: &str) -> Result<()> {
        match &self.backend {
            Backend::Embedded(session) => {
                let text = describe_table(session, name)?;
                print!("{text}");
                Ok(())
            }
            Backend::Remote(_) => {
                let (schema, table) = match name.split_once('.') {
                    Some((s, t)) => (s.to_lowercase(), t.to_lowercase()),
                    None => ("public".to_string(), name.to_lowercase()),
                };
                let quote = |s: &str| s.replace('\'', "''");
                self.execute(&format!(
                    "SELECT column_name AS \"Column\", data_type AS \"Type\", \
                     CASE is_nullable WHEN 'NO' THEN 'not null' ELSE '' END AS \"Nullable\", \
                     coalesce(column_default, '') AS \"Default\" \
                     FROM information_schema.columns \
                     WHERE table_schema = '{}' AND table_name = '{}' ORDER BY ordinal_position;",
                    quote(&schema),
                    quote(&table)
                ));
                Ok(())
            }
        }
    }
}

/// Completes when Ctrl-C is pressed (interactive shells only).
async fn ctrl_c(interactive: bool) {
    if !interactive {
        return std::future::pending().await;
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// An embedded statement's result, as the shell prints it.
fn embedded_output(
    result: Result<StatementResult>,
    options: &Arc<pgwire::types::format::FormatOptions>,
) -> Output {
    match result {
        Ok(StatementResult::Rows {
            schema, batches, ..
        }) => match ResultSet::from_batches(&schema, &batches, options) {
            Ok(set) => Output::Rows(set),
            Err(e) => Output::Error(format!("ERROR:  {e}")),
        },
        Ok(StatementResult::RowStream { .. }) => {
            unreachable!("the shell collects every result before printing it")
        }
        Ok(StatementResult::Command { tag, rows }) => Output::Command(match (tag, rows) {
            ("INSERT", Some(n)) => format!("INSERT 0 {n}"),
            (tag, Some(n)) => format!("{tag} {n}"),
            (tag, None) => tag.to_string(),
        }),
        Ok(StatementResult::TransactionControl { tag, .. }) => Output::Command(tag.to_string()),
        Ok(StatementResult::Empty) => Output::Text(String::new()),
        Ok(StatementResult::CopyIn(_)) => Output::Error(format!(
            "ERROR:  {}",
            QuiverError::FeatureNotSupported(
                "COPY FROM STDIN needs a client that sends the data, such as psql's \\copy; \
                 the shell can COPY from a server file"
                    .into()
            )
        )),
        Ok(StatementResult::CopyOut(_)) => Output::Error(format!(
            "ERROR:  {}",
            QuiverError::FeatureNotSupported(
                "COPY TO STDOUT needs a client that receives the data, such as psql's \\copy; \
                 the shell can COPY to a server file"
                    .into()
            )
        )),
        Err(e) => Output::Error(format!("ERROR:  {e}")),
    }
}

fn list_tables(session: &Session) -> Result<String> {
    use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    let catalog = session.database().catalog();
    let mut rows: Vec<(String, String, &str)> = Vec::new();
    for (schema, entry) in &catalog.schemas {
        rows.extend(
            entry
                .tables
                .keys()
                .map(|t| (schema.clone(), t.clone(), "table")),
        );
        rows.extend(
            entry
                .views
                .keys()
                .map(|v| (schema.clone(), v.clone(), "view")),
        );
    }
    if rows.is_empty() {
        return Ok("Did not find any relations.\n".into());
    }
    rows.sort();
    let schema = Arc::new(Schema::new(vec![
        Field::new("Schema", DataType::Utf8, false),
        Field::new("Name", DataType::Utf8, false),
        Field::new("Type", DataType::Utf8, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.0.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.1.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    Ok(format!(
        "List of relations\n{}",
        render_table(&schema, &[batch])?
    ))
}

fn describe_table(session: &Session, name: &str) -> Result<String> {
    use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    let (schema_name, table_name) = match name.split_once('.') {
        Some((s, t)) => (s.to_lowercase(), t.to_lowercase()),
        None => ("public".to_string(), name.to_lowercase()),
    };
    let qualified = QualifiedName::new(schema_name, table_name);
    let catalog = session.database().catalog();
    let (kind, table_schema) = if let Some(t) = catalog.table(&qualified) {
        ("Table", t.schema_ref())
    } else if let Some(v) = catalog.view(&qualified) {
        ("View", v.schema.clone())
    } else {
        return Err(QuiverError::UndefinedTable(name.to_string()));
    };
    let defaults: std::collections::HashMap<String, String> = catalog
        .table(&qualified)
        .map(|t| t.defaults_sql().iter().cloned().collect())
        .unwrap_or_default();
    let fields = table_schema.fields();
    let out_schema = Arc::new(Schema::new(vec![
        Field::new("Column", DataType::Utf8, false),
        Field::new("Type", DataType::Utf8, false),
        Field::new("Nullable", DataType::Utf8, false),
        Field::new("Default", DataType::Utf8, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            fields.iter().map(|f| f.name().clone()),
        )),
        Arc::new(StringArray::from_iter_values(
            fields.iter().map(|f| display_type(f)),
        )),
        Arc::new(StringArray::from_iter_values(fields.iter().map(|f| {
            if f.is_nullable() {
                ""
            } else {
                "not null"
            }
        }))),
        Arc::new(StringArray::from_iter_values(
            fields
                .iter()
                .map(|f| defaults.get(f.name()).cloned().unwrap_or_default()),
        )),
    ];
    let batch = RecordBatch::try_new(out_schema.clone(), columns)?;
    let table = render_table(&out_schema, &[batch])?;
    // Drop the "(N rows)" footer, as psql's \d does.
    let body = table.rsplit_once("(").map(|(b, _)| b).unwrap_or(&table);
    let mut out = format!("{kind} \"{qualified}\"\n{body}");
    let constraints = catalog
        .table(&qualified)
        .map(|t| t.unique_constraints())
        .unwrap_or_default();
    if !constraints.is_empty() {
        out.push_str("Indexes:\n");
        for c in constraints {
            let columns: Vec<&str> = c
                .columns
                .iter()
                .map(|&i| fields[i].name().as_str())
                .collect();
            let kind = if c.primary {
                "PRIMARY KEY"
            } else {
                "UNIQUE CONSTRAINT"
            };
            out.push_str(&format!(
                "    \"{}\" {kind}, hash ({})\n",
                c.name,
                columns.join(", ")
            ));
        }
    }
    if let Some(table) = catalog.table(&qualified) {
        if !table.checks().is_empty() {
            out.push_str("Check constraints:\n");
            for check in table.checks() {
                out.push_str(&format!("    \"{}\" CHECK ({})\n", check.name, check.sql));
            }
        }
    }
    Ok(out)
}

const HELP: &str = r"Backslash commands:
  \dt, \d              list tables and views
  \d NAME              describe a table or view
  \x [on|off]          expanded display: one line per column
  \pset format FORMAT  aligned (default), csv or json output
  \csv, \json          shorthands for \pset format csv / json
  \o [FILE]            send query output to FILE (no FILE: back to stdout)
  \timing [on|off]     show how long each statement takes
  \i FILE              run the SQL in FILE
  \q                   quit
End each SQL statement with ';'. Ctrl-C cancels a running query.";

fn print_error(e: &QuiverError) {
    eprintln!("ERROR:  {e}");
}

/// A statement is complete when it ends with `;` outside quotes and comments.
fn statement_complete(buffer: &str) -> bool {
    let mut last_significant = None;
    let mut chars = buffer.chars().peekable();
    let (mut in_single, mut in_double, mut in_block) = (false, false, false);
    while let Some(c) = chars.next() {
        if in_block {
            if c == '*' && chars.peek() == Some(&'/') {
                chars.next();
                in_block = false;
            }
            continue;
        }
        if in_single {
            in_single = c != '\'';
            continue;
        }
        if in_double {
            in_double = c != '"';
            continue;
        }
        match c {
            '\'' => in_single = true,
            '"' => in_double = true,
            '-' if chars.peek() == Some(&'-') => {
                // Line comment: skip to the end of the line.
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                continue;
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                in_block = true;
                continue;
            }
            _ => {}
        }
        if !c.is_whitespace() {
            last_significant = Some(c);
        }
    }
    !in_single && !in_double && !in_block && last_significant == Some(';')
}

fn only_comments(buffer: &str) -> bool {
    buffer
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with("--"))
}

fn history_path() -> Option<std::path::PathBuf> {
    if let Ok(path) = std::env::var("QUIVER_HISTORY") {
        return Some(path.into());
    }
    std::env::var_os("HOME").map(|home| std::path::Path::new(&home).join(".quiver_history"))
}

const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP BY",
    "ORDER BY",
    "HAVING",
    "LIMIT",
    "OFFSET",
    "JOIN",
    "LEFT JOIN",
    "INNER JOIN",
    "ON",
    "AS",
    "AND",
    "OR",
    "NOT",
    "NULL",
    "IS",
    "IN",
    "EXISTS",
    "BETWEEN",
    "LIKE",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "DISTINCT",
    "UNION",
    "ALL",
    "INSERT INTO",
    "VALUES",
    "CREATE TABLE",
    "CREATE VIEW",
    "CREATE SCHEMA",
    "DROP TABLE",
    "DROP VIEW",
    "DROP SCHEMA",
    "IF EXISTS",
    "IF NOT EXISTS",
    "EXPLAIN",
    "ANALYZE",
    "SET",
    "SHOW",
    "WITH",
    "COUNT",
    "SUM",
    "AVG",
    "MIN",
    "MAX",
    "INTEGER",
    "BIGINT",
    "SMALLINT",
    "TEXT",
    "VARCHAR",
    "BOOLEAN",
    "DATE",
    "TIMESTAMP",
    "NUMERIC",
    "DOUBLE PRECISION",
];

/// Completes SQL keywords and relation names.
#[derive(Helper, Hinter, Highlighter, Validator)]
struct ShellHelper {
    /// Relation names complete from it (embedded shells only).
    db: Option<Arc<Database>>,
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = line[..pos]
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
            .map(|i| i + 1)
            .unwrap_or(0);
        let word = &line[start..pos];
        if word.is_empty() {
            return Ok((start, Vec::new()));
        }
        let lower = word.to_lowercase();
        let upper = word.to_uppercase();
        let mut candidates: Vec<Pair> = Vec::new();
        if let Some(db) = &self.db {
            let catalog = db.catalog();
            for entry in catalog.schemas.values() {
                for name in entry.tables.keys().chain(entry.views.keys()) {
                    if name.starts_with(&lower) {
                        candidates.push(Pair {
                            display: name.clone(),
                            replacement: name.clone(),
                        });
                    }
                }
            }
        }
        for keyword in KEYWORDS {
            if keyword.starts_with(&upper) {
                // Keep the case the user types in.
                let replacement = if word.chars().next().is_some_and(|c| c.is_lowercase()) {
                    keyword.to_lowercase()
                } else {
                    keyword.to_string()
                };
                candidates.push(Pair {
                    display: keyword.to_string(),
                    replacement,
                });
            }
        }
        Ok((start, candidates))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_end_at_a_semicolon_outside_quotes_and_comments() {
        assert!(statement_complete("select 1;"));
        assert!(statement_complete("select 1; -- done\n"));
        assert!(!statement_complete("select ';'"));
        assert!(!statement_complete("select 1 -- ;"));
        assert!(!statement_complete("select /* ; */ 1"));
        assert!(statement_complete("select 'it''s';"));
    }
}
