//! `DateStyle`: how dates and timestamps are written (`ISO`, `SQL`,
//! `Postgres`, `German`) and in which order an ambiguous date such as
//! `01/02/2024` is read (`MDY`, `DMY`, `YMD`), as PostgreSQL's
//! `check_datestyle` and `EncodeDateTime` do.

use std::fmt;

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};

/// How dates and times are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Style {
    #[default]
    Iso,
    Sql,
    Postgres,
    German,
}

/// The order of day, month and year in a date written without its year
/// first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Order {
    #[default]
    Mdy,
    Dmy,
    Ymd,
}

/// The session's DateStyle, as the planner reads it and SET changes it.
pub type Handle = std::sync::Arc<std::sync::RwLock<DateStyle>>;

/// The `DateStyle` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DateStyle {
    pub style: Style,
    pub order: Order,
}

impl fmt::Display for DateStyle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let style = match self.style {
            Style::Iso => "ISO",
            Style::Sql => "SQL",
            Style::Postgres => "Postgres",
            Style::German => "German",
        };
        let order = match self.order {
            Order::Mdy => "MDY",
            Order::Dmy => "DMY",
            Order::Ymd => "YMD",
        };
        write!(f, "{style}, {order}")
    }
}

impl DateStyle {
    /// `SET DateStyle = value` with `current` in force: a style, an order,
    /// or both, separated by commas or spaces; what is not named stays.
    /// `German` also means `DMY` unless an order is named. The error is
    /// PostgreSQL's DETAIL.
    pub fn set(current: DateStyle, value: &str) -> Result<DateStyle, String> {
        let mut style: Option<Style> = None;
        let mut order: Option<Order> = None;
        let mut german_order = false;
        let mut conflict = false;
        for word in value
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|w| !w.is_empty())
        {
            let (new_style, new_order) = match word.to_ascii_lowercase().as_str() {
                "iso" => (Some(Style::Iso), None),
                "sql" => (Some(Style::Sql), None),
                "postgres" => (Some(Style::Postgres), None),
                "german" => (Some(Style::German), None),
                "ymd" => (None, Some(Order::Ymd)),
                "dmy" | "euro" | "european" => (None, Some(Order::Dmy)),
                "mdy" | "us" | "noneuro" | "noneuropean" => (None, Some(Order::Mdy)),
                "default" => (Some(Style::Iso), Some(Order::Mdy)),
                _ => return Err(format!("Unrecognized key word: \"{word}\".")),
            };
            if let Some(s) = new_style {
                conflict |= style.is_some_and(|old| old != s);
                style = Some(s);
                german_order |= s == Style::German;
            }
            if let Some(o) = new_order {
                conflict |= order.is_some_and(|old| old != o);
                order = Some(o);
            }
        }
        if conflict {
            return Err("Conflicting \"datestyle\" specifications.".into());
        }
        if german_order && order.is_none() {
            order = Some(Order::Dmy);
        }
        Ok(DateStyle {
            style: style.unwrap_or(current.style),
            order: order.unwrap_or(current.order),
        })
    }

    /// The setting as `SHOW DateStyle` shows it (`SQL, DMY`); anything
    /// else is the default.
    pub fn parse(shown: &str) -> DateStyle {
        DateStyle::set(DateStyle::default(), shown).unwrap_or_default()
    }

    /// Day, month and year of a date in this style, with ` BC` before
    /// year 1 (written as the caller puts it: after the time in the
    /// Postgres style).
    fn day(&self, date: NaiveDate) -> (String, &'static str) {
        let (year, era) = match date.year() {
            y if y <= 0 => (1 - y, " BC"),
            y => (y, ""),
        };
        let (d, m) = (date.day(), date.month());
        let text = match (self.style, self.order) {
            (Style::Iso, _) => format!("{year:04}-{m:02}-{d:02}"),
            (Style::Sql, Order::Dmy) => format!("{d:02}/{m:02}/{year:04}"),
            (Style::Sql, _) => format!("{m:02}/{d:02}/{year:04}"),
            (Style::Postgres, Order::Dmy) => format!("{d:02}-{m:02}-{year:04}"),
            (Style::Postgres, _) => format!("{m:02}-{d:02}-{year:04}"),
            (Style::German, _) => format!("{d:02}.{m:02}.{year:04}"),
        };
        (text, era)
    }

    /// A date as PostgreSQL writes it in this style.
    pub fn date_text(&self, date: NaiveDate) -> String {
        let (text, era) = self.day(date);
        text + era
    }

    /// A timestamp (a local time) as PostgreSQL writes it in this style;
    /// `zone` is what follows for a `timestamptz`: its offset (`+01`) in
    /// ISO, else its abbreviation (`CET`).
    pub fn timestamp_text(&self, local: NaiveDateTime, zone: Option<(&str, &str)>) -> String {
        let mut time = format!(
            "{:02}:{:02}:{:02}",
            local.hour(),
            local.minute(),
            local.second()
        );
        let micros = local.nanosecond() / 1000;
        if micros != 0 {
            let digits = format!("{micros:06}");
            time.push('.');
            time.push_str(digits.trim_end_matches('0'));
        }
        let (day, era) = self.day(local.date());
        let mut text = match self.style {
            Style::Postgres => {
                let date = local.date();
                let year = match date.year() {
                    y if y <= 0 => 1 - y,
                    y => y,
                };
                let weekday = date.format("%a");
                let month = date.format("%b");
                match self.order {
                    Order::Dmy => format!("{weekday} {:02} {month} {time} {year:04}", date.day()),
                    _ => format!("{weekday} {month} {:02} {time} {year:04}", date.day()),
                }
            }
            _ => format!("{day} {time}"),
        };
        match (self.style, zone) {
            (Style::Iso, Some((offset, _))) => text.push_str(offset),
            (_, Some((_, abbreviation))) => {
                text.push(' ');
                text.push_str(abbreviation);
            }
            (_, None) => {}
        }
        text.push_str(era);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(current: &str, value: &str) -> Result<String, String> {
        DateStyle::set(DateStyle::parse(current), value).map(|s| s.to_string())
    }

    #[test]
    fn set_reads_what_postgresql_reads() {
        assert_eq!(set("ISO, MDY", "SQL").unwrap(), "SQL, MDY");
        assert_eq!(set("SQL, MDY", "DMY").unwrap(), "SQL, DMY");
        assert_eq!(set("SQL, DMY", "German, MDY").unwrap(), "German, MDY");
        assert_eq!(set("ISO, MDY", "German").unwrap(), "German, DMY");
        assert_eq!(set("German, DMY", "US").unwrap(), "German, MDY");
        assert_eq!(set("German, MDY", "Postgres").unwrap(), "Postgres, MDY");
        assert_eq!(set("SQL, DMY", "iso ymd").unwrap(), "ISO, YMD");
        assert_eq!(set("SQL, DMY", "default").unwrap(), "ISO, MDY");
        assert!(set("ISO, MDY", "ISO, SQL")
            .unwrap_err()
            .contains("Conflicting"));
        assert!(set("ISO, MDY", "foo").unwrap_err().contains("\"foo\""));
    }

    #[test]
    fn dates_and_times_are_written_as_postgresql_writes_them() {
        let date = NaiveDate::from_ymd_opt(1997, 12, 7).unwrap();
        let moment = date.and_hms_micro_opt(7, 37, 16, 500_000).unwrap();
        let bc = NaiveDate::from_ymd_opt(-43, 3, 15).unwrap();
        let cases = [
            (
                "ISO, MDY",
                "1997-12-07",
                "1997-12-07 07:37:16.5-08",
                "0044-03-15 BC",
            ),
            (
                "SQL, MDY",
                "12/07/1997",
                "12/07/1997 07:37:16.5 PST",
                "03/15/0044 BC",
            ),
            (
                "SQL, DMY",
                "07/12/1997",
                "07/12/1997 07:37:16.5 PST",
                "15/03/0044 BC",
            ),
            (
                "Postgres, MDY",
                "12-07-1997",
                "Sun Dec 07 07:37:16.5 1997 PST",
                "03-15-0044 BC",
            ),
            (
                "Postgres, DMY",
                "07-12-1997",
                "Sun 07 Dec 07:37:16.5 1997 PST",
                "15-03-0044 BC",
            ),
            (
                "German, DMY",
                "07.12.1997",
                "07.12.1997 07:37:16.5 PST",
                "15.03.0044 BC",
            ),
        ];
        for (style, day, stamp, old) in cases {
            let style = DateStyle::parse(style);
            assert_eq!(style.date_text(date), day);
            assert_eq!(style.timestamp_text(moment, Some(("-08", "PST"))), stamp);
            assert_eq!(style.date_text(bc), old);
        }
        assert_eq!(
            DateStyle::parse("SQL, DMY").timestamp_text(date.and_hms_opt(7, 0, 0).unwrap(), None),
            "07/12/1997 07:00:00"
        );
    }
}
