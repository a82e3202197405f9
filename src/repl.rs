//! The interactive shell: rustyline on top of an embedded `Session`, with
//! psql-style output and a few backslash commands.
//!
//! Interactive use reads line by line with history and completion; piped
//! input runs as a script and stops at the first error with exit status 1.

mod format;

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use pgwire::types::format::FormatOptions;
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{Editor, Helper, Highlighter, Hinter, Validator};

use crate::engine::types::display_type;
use crate::engine::{Database, QualifiedName};
use crate::error::{QuiverError, Result};
use crate::pg::types::format_options;
use crate::session::{Session, StatementResult};
pub use format::{render_table, render_table_with};

/// Runs the shell on `db` until `\q`, end of input, or (for scripts) the
/// first error.
pub fn run(db: Arc<Database>, runtime: &tokio::runtime::Runtime) -> anyhow::Result<ExitCode> {
    let mut shell = Shell {
        session: Session::new(db.clone()),
        runtime,
        timing: false,
        interactive: std::io::stdin().is_terminal(),
    };
    if shell.interactive {
        shell.interactive_loop(db)
    } else {
        let mut script = String::new();
        std::io::stdin().read_to_string(&mut script)?;
        Ok(if shell.run_script(&script) {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }
}

struct Shell<'r> {
    session: Session,
    runtime: &'r tokio::runtime::Runtime,
    timing: bool,
    interactive: bool,
}

/// What a complete input (a statement or a backslash command) asks for.
enum Flow {
    Continue,
    Quit,
}

impl Shell<'_> {
    fn interactive_loop(&mut self, db: Arc<Database>) -> anyhow::Result<ExitCode> {
        let mut editor: Editor<ShellHelper, DefaultHistory> = Editor::new()?;
        editor.set_helper(Some(ShellHelper { db }));
        let history = history_path();
        if let Some(path) = &history {
            let _ = editor.load_history(path);
        }
        println!(
            "QuiverDB {} shell. End statements with ';'. \\? for help, \\q to quit.",
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
        let session = &mut self.session;
        let interactive = self.interactive;
        let results = self.runtime.block_on(async {
            if !interactive {
                return Some(session.execute_sql(sql).await);
            }
            // Ctrl-C while a query runs cancels it and returns to the prompt.
            tokio::select! {
                results = session.execute_sql(sql) => Some(results),
                _ = tokio::signal::ctrl_c() => None,
            }
        });
        let Some(results) = results else {
            print_error(&QuiverError::QueryCanceled);
            return false;
        };
        let mut ok = true;
        for result in results {
            match result {
                Ok(result) => print_result(&result, &format_options(session.settings())),
                Err(e) => {
                    print_error(&e);
                    ok = false;
                }
            }
        }
        if self.timing {
            println!("Time: {:.3} ms", started.elapsed().as_secs_f64() * 1000.0);
        }
        ok
    }

    fn meta_command(&mut self, line: &str) -> Result<Flow> {
        let mut parts = line.splitn(2, char::is_whitespace);
        let command = parts.next().unwrap_or_default();
        let arg = parts.next().map(str::trim).unwrap_or_default();
        match command {
            "\\q" | "\\quit" => return Ok(Flow::Quit),
            "\\timing" => {
                self.timing = match arg {
                    "on" => true,
                    "off" => false,
                    _ => !self.timing,
                };
                println!("Timing is {}.", if self.timing { "on" } else { "off" });
            }
            "\\dt" => print!("{}", self.list_tables()?),
            "\\d" if arg.is_empty() => print!("{}", self.list_tables()?),
            "\\d" => print!("{}", self.describe_table(arg)?),
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

    fn list_tables(&self) -> Result<String> {
        use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        let catalog = self.session.database().catalog();
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

    fn describe_table(&self, name: &str) -> Result<String> {
        use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        let (schema_name, table_name) = match name.split_once('.') {
            Some((s, t)) => (s.to_lowercase(), t.to_lowercase()),
            None => ("public".to_string(), name.to_lowercase()),
        };
        let qualified = QualifiedName::new(schema_name, table_name);
        let catalog = self.session.database().catalog();
        let (kind, table_schema) = if let Some(t) = catalog.table(&qualified) {
            ("Table", t.schema_ref())
        } else if let Some(v) = catalog.view(&qualified) {
            ("View", Arc::new(v.plan.schema().as_arrow().clone()))
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
}

const HELP: &str = r"Backslash commands:
  \dt, \d          list tables and views
  \d NAME          describe a table or view
  \timing [on|off] show how long each statement takes
  \i FILE          run the SQL in FILE
  \q               quit
End each SQL statement with ';'. Ctrl-C cancels a running query.";

fn print_result(result: &StatementResult, options: &Arc<FormatOptions>) {
    match result {
        StatementResult::Rows {
            schema, batches, ..
        } => match render_table_with(schema, batches, options) {
            Ok(text) => println!("{text}"),
            Err(e) => print_error(&e),
        },
        StatementResult::Command { tag, rows } => match (tag, rows) {
            (&"INSERT", Some(n)) => println!("INSERT 0 {n}"),
            (tag, Some(n)) => println!("{tag} {n}"),
            (tag, None) => println!("{tag}"),
        },
        StatementResult::TransactionControl { tag, .. } => println!("{tag}"),
        StatementResult::Empty => {}
        StatementResult::CopyIn(_) => print_error(&QuiverError::FeatureNotSupported(
            "COPY FROM STDIN needs a client that sends the data, such as psql's \\copy".into(),
        )),
        StatementResult::CopyOut(_) => print_error(&QuiverError::FeatureNotSupported(
            "COPY TO STDOUT needs a client that receives the data, such as psql's \\copy".into(),
        )),
    }
    let _ = std::io::stdout().flush();
}

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
    db: Arc<Database>,
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
        let catalog = self.db.catalog();
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
