//! Session settings (`SET`, `SHOW`, `RESET`): the Postgres parameters that
//! clients read and write, with their defaults.

use std::collections::BTreeMap;

use crate::error::{QuiverError, Result};

/// The version we report to clients. Drivers parse the leading number to
/// pick protocol features, so it must look like a Postgres version.
pub const SERVER_VERSION: &str = "16.6";
pub const SERVER_VERSION_NUM: &str = "160006";

/// (name, default, description). Names are matched case-insensitively and
/// shown with this spelling, as Postgres does.
const PARAMETERS: &[(&str, &str, &str)] = &[
    (
        "application_name",
        "",
        "Sets the application name to be reported in statistics and logs.",
    ),
    ("bytea_output", "hex", "Sets the output format for bytea."),
    (
        "client_encoding",
        "UTF8",
        "Sets the client's character set encoding.",
    ),
    (
        "client_min_messages",
        "notice",
        "Sets the message levels that are sent to the client.",
    ),
    (
        "DateStyle",
        "ISO, MDY",
        "Sets the display format for date and time values.",
    ),
    (
        "default_transaction_isolation",
        "read committed",
        "Sets the transaction isolation level of each new transaction.",
    ),
    (
        "default_transaction_read_only",
        "off",
        "Sets the default read-only status of new transactions.",
    ),
    (
        "extra_float_digits",
        "1",
        "Sets the number of digits displayed for floating-point values.",
    ),
    (
        "idle_in_transaction_session_timeout",
        "0",
        "Sets the maximum allowed idle time between queries, when in a transaction.",
    ),
    (
        "integer_datetimes",
        "on",
        "Shows whether datetimes are integer based.",
    ),
    (
        "IntervalStyle",
        "postgres",
        "Sets the display format for interval values.",
    ),
    ("lc_collate", "C", "Shows the collation order locale."),
    (
        "lc_ctype",
        "C",
        "Shows the character classification and case conversion locale.",
    ),
    (
        "lc_messages",
        "C",
        "Sets the language in which messages are displayed.",
    ),
    (
        "lc_monetary",
        "C",
        "Sets the locale for formatting monetary amounts.",
    ),
    ("lc_numeric", "C", "Sets the locale for formatting numbers."),
    (
        "lc_time",
        "C",
        "Sets the locale for formatting date and time values.",
    ),
    (
        "lock_timeout",
        "0",
        "Sets the maximum allowed duration of any wait for a lock.",
    ),
    (
        "max_identifier_length",
        "63",
        "Shows the maximum identifier length.",
    ),
    (
        "search_path",
        "\"$user\", public",
        "Sets the schema search order for names that are not schema-qualified.",
    ),
    (
        "server_encoding",
        "UTF8",
        "Shows the server (database) character set encoding.",
    ),
    (
        "server_version",
        SERVER_VERSION,
        "Shows the server version.",
    ),
    (
        "server_version_num",
        SERVER_VERSION_NUM,
        "Shows the server version as an integer.",
    ),
    (
        "standard_conforming_strings",
        "on",
        "Causes '...' strings to treat backslashes literally.",
    ),
    (
        "statement_timeout",
        "0",
        "Sets the maximum allowed duration of any statement.",
    ),
    (
        "synchronous_commit",
        "on",
        "Sets the current transaction's synchronization level.",
    ),
    (
        "TimeZone",
        "UTC",
        "Sets the time zone for displaying and interpreting time stamps.",
    ),
    (
        "transaction_isolation",
        "read committed",
        "Sets the current transaction's isolation level.",
    ),
    (
        "transaction_read_only",
        "off",
        "Sets the current transaction's read-only status.",
    ),
];

/// Parameters a client may read but not change.
const READ_ONLY: &[&str] = &[
    "integer_datetimes",
    "lc_collate",
    "lc_ctype",
    "max_identifier_length",
    "server_encoding",
    "server_version",
    "server_version_num",
];

/// Settings whose change must be reported to the client with a
/// ParameterStatus message (the `GUC_REPORT` ones in Postgres).
pub const REPORTED: &[&str] = &[
    "application_name",
    "client_encoding",
    "DateStyle",
    "integer_datetimes",
    "IntervalStyle",
    "server_encoding",
    "server_version",
    "standard_conforming_strings",
    "TimeZone",
];

#[derive(Debug, Clone)]
pub struct Settings {
    values: BTreeMap<&'static str, String>,
    /// What RESET returns to: the built-in defaults, or the server's
    /// (`quiver serve --statement-timeout ...`).
    defaults: BTreeMap<&'static str, String>,
}

impl Default for Settings {
    fn default() -> Self {
        let values: BTreeMap<_, _> = PARAMETERS
            .iter()
            .map(|(name, default, _)| (*name, default.to_string()))
            .collect();
        Settings {
            defaults: values.clone(),
            values,
        }
    }
}

/// The name `SHOW` heads its column with: the parameter's own spelling
/// (`TimeZone`, `DateStyle`), else the name as lower case.
pub fn show_name(name: &str) -> String {
    canonical(name).map_or_else(|| name.to_lowercase(), str::to_string)
}

fn canonical(name: &str) -> Option<&'static str> {
    PARAMETERS
        .iter()
        .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
        .map(|(n, _, _)| *n)
}

impl Settings {
    pub fn get(&self, name: &str) -> Result<&str> {
        let key = canonical(name).ok_or_else(|| QuiverError::UnknownSetting(name.to_string()))?;
        Ok(self.values[key].as_str())
    }

    /// Sets a parameter after checking the value; returns the canonical name.
    pub fn set(&mut self, name: &str, value: &str) -> Result<&'static str> {
        let key = canonical(name).ok_or_else(|| QuiverError::UnknownSetting(name.to_string()))?;
        if READ_ONLY.contains(&key) {
            return Err(QuiverError::InvalidParameterValue(format!(
                "parameter \"{key}\" cannot be changed"
            )));
        }
        let value = match key {
            // What the value leaves out (the style or the order) stays.
            "DateStyle" => {
                let current = super::pg_datestyle::DateStyle::parse(&self.values[key]);
                super::pg_datestyle::DateStyle::set(current, value)
                    .map(|style| style.to_string())
                    .map_err(|_| invalid(key, value))?
            }
            _ => normalise(key, value)?,
        };
        self.values.insert(key, value);
        Ok(key)
    }

    pub fn reset(&mut self, name: &str) -> Result<&'static str> {
        let key = canonical(name).ok_or_else(|| QuiverError::UnknownSetting(name.to_string()))?;
        self.values.insert(key, self.defaults[key].clone());
        Ok(key)
    }

    pub fn reset_all(&mut self) {
        self.values = self.defaults.clone();
    }

    /// Settings whose defaults the server changed: each (name, value) is
    /// checked as SET would check it, and becomes what RESET returns to.
    pub fn with_defaults(defaults: &[(String, String)]) -> Result<Settings> {
        let mut settings = Settings::default();
        for (name, value) in defaults {
            let key = settings.set(name, value)?;
            settings.defaults.insert(key, settings.values[key].clone());
        }
        Ok(settings)
    }

    /// (name, value, description) of every parameter, for `SHOW ALL`.
    pub fn all(&self) -> impl Iterator<Item = (&'static str, &str, &'static str)> {
        PARAMETERS
            .iter()
            .map(|(name, _, desc)| (*name, self.values[name].as_str(), *desc))
    }

    /// Schemas named on the search path, in order (`$user` is skipped).
    pub fn search_path(&self) -> Vec<String> {
        self.values["search_path"]
            .split(',')
            .map(|s| s.trim())
            .filter(|s| !s.is_empty() && *s != "\"$user\"" && *s != "$user")
            .map(|s| {
                if s.starts_with('"') && s.ends_with('"') && s.len() >= 2 {
                    s[1..s.len() - 1].to_string()
                } else {
                    s.to_lowercase()
                }
            })
            .collect()
    }
}

fn invalid(name: &str, value: &str) -> QuiverError {
    QuiverError::InvalidSettingValue {
        name: name.to_string(),
        value: value.to_string(),
    }
}

/// Checks a new value and brings it to the form Postgres reports.
fn normalise(key: &'static str, value: &str) -> Result<String> {
    match key {
        "client_encoding" => {
            let v = value.to_ascii_uppercase().replace(['-', '_'], "");
            if v == "UTF8" || v == "UNICODE" {
                Ok("UTF8".into())
            } else {
                Err(QuiverError::FeatureNotSupported(format!(
                    "client encoding \"{value}\" is not supported; QuiverDB speaks UTF8"
                )))
            }
        }
        // An IANA name in any case, hours east (`-7`, `+05:30`), or a
        // POSIX zone (`UTC+3`: hours west), shown as PostgreSQL shows it.
        "TimeZone" => super::pg_timezone::parse_zone(value)
            .map(|zone| zone.name)
            .ok_or_else(|| invalid(key, value)),
        // Relative to the value in force: see [`Settings::set`].
        "DateStyle" => super::pg_datestyle::DateStyle::set(Default::default(), value)
            .map(|style| style.to_string())
            .map_err(|_| invalid(key, value)),
        "IntervalStyle" => match value.to_ascii_lowercase().as_str() {
            style @ ("postgres" | "postgres_verbose" | "sql_standard" | "iso_8601") => {
                Ok(style.into())
            }
            _ => Err(invalid(key, value)),
        },
        "extra_float_digits" => match value.parse::<i32>() {
            Ok(n) if (-15..=3).contains(&n) => Ok(n.to_string()),
            _ => Err(invalid(key, value)),
        },
        "statement_timeout" | "lock_timeout" | "idle_in_transaction_session_timeout" => {
            parse_duration_ms(value)
                .map(|ms| ms.to_string())
                .ok_or_else(|| invalid(key, value))
        }
        "standard_conforming_strings" => match value.to_ascii_lowercase().as_str() {
            "on" | "true" | "1" => Ok("on".into()),
            _ => Err(QuiverError::FeatureNotSupported(
                "standard_conforming_strings must stay on".into(),
            )),
        },
        "bytea_output" => match value.to_ascii_lowercase().as_str() {
            format @ ("hex" | "escape") => Ok(format.into()),
            _ => Err(invalid(key, value)),
        },
        "synchronous_commit" => crate::engine::SyncLevel::parse(value)
            .map(|level| level.as_str().to_string())
            .ok_or_else(|| invalid(key, value)),
        "default_transaction_read_only" | "transaction_read_only" => {
            match value.to_ascii_lowercase().as_str() {
                "on" | "true" | "1" | "yes" => Ok("on".into()),
                "off" | "false" | "0" | "no" => Ok("off".into()),
                _ => Err(invalid(key, value)),
            }
        }
        _ => Ok(value.to_string()),
    }
}

/// Postgres duration settings: a bare number is milliseconds; units ms, s,
/// min, h, d are accepted.
pub fn parse_duration_ms(value: &str) -> Option<u64> {
    let v = value.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().ok()?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "ms" => 1,
        "s" => 1000,
        "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_case_insensitive_and_reported_canonically() {
        let mut s = Settings::default();
        assert_eq!(s.set("datestyle", "ISO").unwrap(), "DateStyle");
        assert_eq!(s.get("DATESTYLE").unwrap(), "ISO, MDY");
    }

    #[test]
    fn unknown_parameter_is_an_error() {
        let mut s = Settings::default();
        assert!(matches!(
            s.set("no_such_thing", "1"),
            Err(QuiverError::UnknownSetting(_))
        ));
    }

    #[test]
    fn search_path_skips_user_and_unquotes() {
        let mut s = Settings::default();
        s.set("search_path", "\"$user\", Sales, \"Mixed\"").unwrap();
        assert_eq!(s.search_path(), vec!["sales", "Mixed"]);
    }

    #[test]
    fn statement_timeout_accepts_units() {
        assert_eq!(parse_duration_ms("1500"), Some(1500));
        assert_eq!(parse_duration_ms("2s"), Some(2000));
        assert_eq!(parse_duration_ms("1 min"), Some(60_000));
        assert_eq!(parse_duration_ms("soon"), None);
    }
}
