//! Random typed expressions and queries over table `t` for the
//! differential test, as trees so that a failing one can be shrunk.
//!
//! Over 800 lines: the expression and query generator, one function per
//! grammar rule.

/// The SQL types the generator builds expressions of.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Ty {
    Int2,
    Int4,
    Int8,
    Numeric,
    Float,
    Text,
    Bool,
    Date,
    Timestamp,
    Timestamptz,
}

const NUMBERS: [Ty; 5] = [Ty::Int2, Ty::Int4, Ty::Int8, Ty::Numeric, Ty::Float];
const ALL: [Ty; 10] = [
    Ty::Int2,
    Ty::Int4,
    Ty::Int8,
    Ty::Numeric,
    Ty::Float,
    Ty::Text,
    Ty::Bool,
    Ty::Date,
    Ty::Timestamp,
    Ty::Timestamptz,
];

/// The session time zones queries run in: DST in both hemispheres, a
/// half-hour offset, fixed offsets and a POSIX zone (hours west).
pub const ZONES: [&str; 7] = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Sydney",
    "-7",
    "UTC+3",
];

/// DateStyles a query may run in besides the default `ISO, MDY`.
pub const DATE_STYLES: [&str; 6] = [
    "ISO, DMY",
    "SQL, MDY",
    "SQL, DMY",
    "Postgres, MDY",
    "Postgres, DMY",
    "German",
];

impl Ty {
    fn is_integer(self) -> bool {
        matches!(self, Ty::Int2 | Ty::Int4 | Ty::Int8)
    }

    fn is_number(self) -> bool {
        NUMBERS.contains(&self)
    }

    fn column(self) -> &'static str {
        match self {
            Ty::Int2 => "a",
            Ty::Int4 => "b",
            Ty::Int8 => "c",
            Ty::Numeric => "n",
            Ty::Float => "f",
            Ty::Text => "s",
            Ty::Bool => "flag",
            Ty::Date => "d",
            Ty::Timestamp => "ts",
            Ty::Timestamptz => "tz",
        }
    }

    fn sql_name(self) -> &'static str {
        match self {
            Ty::Int2 => "smallint",
            Ty::Int4 => "integer",
            Ty::Int8 => "bigint",
            Ty::Numeric => "numeric",
            Ty::Float => "double precision",
            Ty::Text => "text",
            Ty::Bool => "boolean",
            Ty::Date => "date",
            Ty::Timestamp => "timestamp",
            Ty::Timestamptz => "timestamptz",
        }
    }

    /// PostgreSQL's result type of arithmetic on two numbers.
    fn arithmetic(self, other: Ty) -> Ty {
        let rank = |t: Ty| match t {
            Ty::Int2 => 0,
            Ty::Int4 => 1,
            Ty::Int8 => 2,
            Ty::Numeric => 3,
            _ => 4,
        };
        if rank(self) >= rank(other) {
            self
        } else {
            other
        }
    }
}

/// PostgreSQL's operator precedence (its documentation's table 4.2),
/// higher binding tighter.
const OR: u8 = 1;
const AND: u8 = 2;
const NOT: u8 = 3;
const IS: u8 = 4;
const COMPARISON: u8 = 5;
const OTHER: u8 = 7;
const PLUS_MINUS: u8 = 8;
const TIMES: u8 = 9;
const POWER: u8 = 10;
const UNARY_MINUS: u8 = 11;

fn binding(op: &str) -> u8 {
    match op {
        "OR" => OR,
        "AND" => AND,
        "IS DISTINCT FROM" => IS,
        "=" | "<>" | "<" | ">=" => COMPARISON,
        "+" | "-" => PLUS_MINUS,
        "*" | "/" | "%" => TIMES,
        "^" => POWER,
        // ||, the bitwise operators and the shifts.
        _ => OTHER,
    }
}

fn prefix_binding(op: &str) -> u8 {
    match op {
        "NOT" => NOT,
        "-" => UNARY_MINUS,
        // @ and ~.
        _ => OTHER,
    }
}

/// An expression and its type.
#[derive(Clone, Debug)]
pub enum Expr {
    Leaf(String, Ty),
    Binary(Box<Expr>, &'static str, Box<Expr>, Ty),
    Prefix(&'static str, Box<Expr>, Ty),
    Call(&'static str, Vec<Expr>, Ty),
    Case(Box<Expr>, Box<Expr>, Box<Expr>, Ty),
    Cast(Box<Expr>, Ty),
    IsNull(Box<Expr>),
    /// SQL with a `{}` for each argument (`EXTRACT(hour FROM {})`).
    Template(&'static str, Vec<Expr>, Ty),
}

impl Expr {
    pub fn ty(&self) -> Ty {
        match self {
            Expr::Leaf(_, t)
            | Expr::Binary(_, _, _, t)
            | Expr::Prefix(_, _, t)
            | Expr::Call(_, _, t)
            | Expr::Case(_, _, _, t)
            | Expr::Cast(_, t)
            | Expr::Template(_, _, t) => *t,
            Expr::IsNull(_) => Ty::Bool,
        }
    }

    /// The SQL, with only the parentheses PostgreSQL's precedence needs,
    /// so that a parser whose precedence differs reads another tree.
    pub fn sql(&self) -> String {
        match self {
            Expr::Leaf(sql, _) => sql.clone(),
            Expr::Binary(l, op, r, _) => {
                let level = binding(op);
                // Left-associative, but for the comparisons and IS, which
                // do not associate at all.
                let left_bare =
                    |c: u8| c > level || c == level && level != IS && level != COMPARISON;
                format!("{} {op} {}", l.operand(left_bare), r.operand(|c| c > level))
            }
            // A prefix operator's operand may be another prefix operator
            // of its level (`- - x`, `NOT NOT b`), not a binary one.
            Expr::Prefix(op, e, _) => {
                let level = prefix_binding(op);
                let bare = |c: u8| c > level || c == level && matches!(**e, Expr::Prefix(..));
                format!("{op} {}", e.operand(bare))
            }
            Expr::Call(name, args, _) => format!(
                "{name}({})",
                args.iter().map(|a| a.sql()).collect::<Vec<_>>().join(", ")
            ),
            Expr::Case(c, a, b, _) => format!(
                "CASE WHEN {} THEN {} ELSE {} END",
                c.sql(),
                a.sql(),
                b.sql()
            ),
            Expr::Cast(e, t) => format!("CAST({} AS {})", e.sql(), t.sql_name()),
            Expr::IsNull(e) => format!("{} IS NULL", e.operand(|c| c > IS)),
            Expr::Template(template, args, _) => {
                let mut out = String::new();
                let mut pieces = template.split("{}");
                out.push_str(pieces.next().unwrap_or(""));
                for (arg, piece) in args.iter().zip(pieces) {
                    out.push_str(&arg.operand(|_| false));
                    out.push_str(piece);
                }
                out
            }
        }
    }

    /// How tightly this expression's outermost operator binds, if it has
    /// one outside parentheses (a negative literal is a unary minus).
    fn level(&self) -> Option<u8> {
        match self {
            Expr::Leaf(sql, _) => sql.starts_with('-').then_some(UNARY_MINUS),
            Expr::Binary(_, op, _, _) => Some(binding(op)),
            Expr::Prefix(op, _, _) => Some(prefix_binding(op)),
            Expr::IsNull(_) => Some(IS),
            Expr::Call(..) | Expr::Case(..) | Expr::Cast(..) | Expr::Template(..) => None,
        }
    }

    /// The SQL as an operand: bare where `bare` says its level needs no
    /// parentheses there.
    fn operand(&self, bare: impl Fn(u8) -> bool) -> String {
        match self.level() {
            Some(level) if !bare(level) => format!("({})", self.sql()),
            _ => self.sql(),
        }
    }

    fn children(&self) -> Vec<&Expr> {
        match self {
            Expr::Leaf(..) => Vec::new(),
            Expr::Binary(l, _, r, _) => vec![l, r],
            Expr::Prefix(_, e, _) | Expr::Cast(e, _) | Expr::IsNull(e) => vec![e],
            Expr::Call(_, args, _) | Expr::Template(_, args, _) => args.iter().collect(),
            Expr::Case(c, a, b, _) => vec![c, a, b],
        }
    }

    /// Smaller expressions of the same type: a child of that type, the
    /// type's column, or this one with one child shrunk.
    pub fn shrunk(&self) -> Vec<Expr> {
        let mut out = Vec::new();
        let ty = self.ty();
        for child in self.children() {
            if child.ty() == ty {
                out.push(child.clone());
            }
        }
        if !matches!(self, Expr::Leaf(..)) {
            out.push(Expr::Leaf(ty.column().to_string(), ty));
        }
        for (i, child) in self.children().into_iter().enumerate() {
            for smaller in child.shrunk() {
                out.push(self.with_child(i, smaller));
            }
        }
        out
    }

    fn with_child(&self, i: usize, child: Expr) -> Expr {
        let mut copy = self.clone();
        match &mut copy {
            Expr::Leaf(..) => {}
            Expr::Binary(l, _, r, _) => **[l, r][i] = child,
            Expr::Prefix(_, e, _) | Expr::Cast(e, _) | Expr::IsNull(e) => **e = child,
            Expr::Call(_, args, _) | Expr::Template(_, args, _) => args[i] = child,
            Expr::Case(c, a, b, _) => **[c, a, b][i] = child,
        }
        copy
    }
}

/// A query over `t`.
#[derive(Clone, Debug)]
pub enum Query {
    /// `SELECT items FROM t [WHERE filter] [ORDER BY 1, ..., id]`
    Select {
        items: Vec<Expr>,
        filter: Option<Expr>,
        order: bool,
    },
    /// `SELECT agg(e), ... FROM t [WHERE filter]`
    Aggregate {
        aggregates: Vec<(&'static str, Expr)>,
        filter: Option<Expr>,
    },
    /// `SELECT l FROM t UNION [ALL] SELECT r FROM t`
    Union { all: bool, left: Expr, right: Expr },
}

impl Query {
    pub fn sql(&self) -> String {
        let list = |items: &[Expr]| items.iter().map(|e| e.sql()).collect::<Vec<_>>().join(", ");
        let filter = |f: &Option<Expr>| match f {
            Some(f) => format!(" WHERE {}", f.sql()),
            None => String::new(),
        };
        match self {
            Query::Select {
                items,
                filter: f,
                order,
            } => {
                let order = if *order {
                    // Every item, then the key: a total order.
                    let mut keys: Vec<String> = (1..=items.len()).map(|i| i.to_string()).collect();
                    keys.push("t.id".into());
                    format!(" ORDER BY {}", keys.join(", "))
                } else {
                    String::new()
                };
                format!("SELECT {} FROM t{}{order}", list(items), filter(f))
            }
            Query::Aggregate {
                aggregates,
                filter: f,
            } => {
                let aggs: Vec<String> = aggregates
                    .iter()
                    .map(|(name, e)| format!("{name}({})", e.sql()))
                    .collect();
                format!("SELECT {} FROM t{}", aggs.join(", "), filter(f))
            }
            Query::Union { all, left, right } => format!(
                "SELECT {} FROM t UNION{} SELECT {} FROM t",
                left.sql(),
                if *all { " ALL" } else { "" },
                right.sql()
            ),
        }
    }

    /// Whether the rows come in a defined order.
    pub fn ordered(&self) -> bool {
        matches!(self, Query::Select { order: true, .. })
    }

    /// Smaller queries: fewer items, no filter, no order, smaller
    /// expressions.
    pub fn shrunk(&self) -> Vec<Query> {
        let mut out = Vec::new();
        match self {
            Query::Select {
                items,
                filter,
                order,
            } => {
                if items.len() > 1 {
                    for i in 0..items.len() {
                        let mut fewer = items.clone();
                        fewer.remove(i);
                        out.push(Query::Select {
                            items: fewer,
                            filter: filter.clone(),
                            order: *order,
                        });
                    }
                }
                if filter.is_some() {
                    out.push(Query::Select {
                        items: items.clone(),
                        filter: None,
                        order: *order,
                    });
                }
                if *order {
                    out.push(Query::Select {
                        items: items.clone(),
                        filter: filter.clone(),
                        order: false,
                    });
                }
                for (i, item) in items.iter().enumerate() {
                    for smaller in item.shrunk() {
                        let mut items = items.clone();
                        items[i] = smaller;
                        out.push(Query::Select {
                            items,
                            filter: filter.clone(),
                            order: *order,
                        });
                    }
                }
                if let Some(f) = filter {
                    for smaller in f.shrunk() {
                        out.push(Query::Select {
                            items: items.clone(),
                            filter: Some(smaller),
                            order: *order,
                        });
                    }
                }
            }
            Query::Aggregate { aggregates, filter } => {
                if aggregates.len() > 1 {
                    for i in 0..aggregates.len() {
                        let mut fewer = aggregates.clone();
                        fewer.remove(i);
                        out.push(Query::Aggregate {
                            aggregates: fewer,
                            filter: filter.clone(),
                        });
                    }
                }
                if filter.is_some() {
                    out.push(Query::Aggregate {
                        aggregates: aggregates.clone(),
                        filter: None,
                    });
                }
                for (i, (name, e)) in aggregates.iter().enumerate() {
                    for smaller in e.shrunk() {
                        let mut aggregates = aggregates.clone();
                        aggregates[i] = (name, smaller);
                        out.push(Query::Aggregate {
                            aggregates,
                            filter: filter.clone(),
                        });
                    }
                }
            }
            Query::Union { all, left, right } => {
                if !*all {
                    out.push(Query::Union {
                        all: true,
                        left: left.clone(),
                        right: right.clone(),
                    });
                }
                for smaller in left.shrunk() {
                    out.push(Query::Union {
                        all: *all,
                        left: smaller,
                        right: right.clone(),
                    });
                }
                for smaller in right.shrunk() {
                    out.push(Query::Union {
                        all: *all,
                        left: left.clone(),
                        right: smaller,
                    });
                }
            }
        }
        out
    }
}

/// A seeded source of random queries.
pub struct Generator {
    state: u64,
}

impl Generator {
    pub fn new(seed: u64) -> Generator {
        Generator { state: seed | 1 }
    }

    fn next(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// The session time zone for the next query.
    pub fn zone(&mut self) -> &'static str {
        if self.chance(40) {
            "UTC"
        } else {
            self.pick(&ZONES)
        }
    }

    /// The DateStyle for the next query, in `zone`. A POSIX zone (`UTC+3`)
    /// stays in ISO: outside it PostgreSQL shows the zone's own name
    /// (`UTC`) where QuiverDB shows the offset (`-03`), a deliberate
    /// difference.
    pub fn date_style(&mut self, zone: &str) -> &'static str {
        if zone == "UTC+3" || self.chance(60) {
            "ISO, MDY"
        } else {
            self.pick(&DATE_STYLES)
        }
    }

    pub fn query(&mut self) -> Query {
        match self.below(10) {
            0..=5 => {
                let n = 1 + self.below(3);
                let items = (0..n)
                    .map(|_| {
                        let ty = self.pick(&ALL);
                        self.expr(ty, 3)
                    })
                    .collect();
                let filter = self.chance(30).then(|| self.expr(Ty::Bool, 2));
                Query::Select {
                    items,
                    filter,
                    order: self.chance(30),
                }
            }
            6..=8 => {
                let n = 1 + self.below(3);
                let aggregates = (0..n).map(|_| self.aggregate()).collect();
                let filter = self.chance(30).then(|| self.expr(Ty::Bool, 2));
                Query::Aggregate { aggregates, filter }
            }
            _ => {
                // Mixed types on purpose: UNION resolves them.
                let (lt, rt) = if self.chance(70) {
                    (self.pick(&NUMBERS), self.pick(&NUMBERS))
                } else {
                    let t = self.pick(&ALL);
                    (t, t)
                };
                Query::Union {
                    all: self.chance(50),
                    left: self.expr(lt, 2),
                    right: self.expr(rt, 2),
                }
            }
        }
    }

    fn aggregate(&mut self) -> (&'static str, Expr) {
        let name = self.pick(&["count", "sum", "min", "max", "avg"]);
        let ty = match name {
            "sum" | "avg" => self.pick(&NUMBERS),
            // A deliberate difference: QuiverDB has min and max of
            // booleans (DataFusion's), PostgreSQL has not (42883).
            "min" | "max" => loop {
                let t = self.pick(&ALL);
                if t != Ty::Bool {
                    break t;
                }
            },
            _ => self.pick(&ALL),
        };
        (name, self.expr(ty, 2))
    }

    fn literal(&mut self, ty: Ty) -> Expr {
        let sql = match ty {
            Ty::Int2 => format!(
                "CAST({} AS smallint)",
                self.pick(&["0", "1", "-3", "32767", "-32768", "100"])
            ),
            Ty::Int4 => self
                .pick(&[
                    "0",
                    "1",
                    "2",
                    "-7",
                    "1000",
                    "2147483647",
                    "-2147483647",
                    "65536",
                ])
                .to_string(),
            Ty::Int8 => self
                .pick(&[
                    "3000000000",
                    "-5000000000",
                    "9223372036854775807",
                    "4294967296",
                ])
                .to_string(),
            Ty::Numeric => self
                .pick(&["1.5", "0.01", "-2.25", "100.125", "0.0", "12345.6789"])
                .to_string(),
            Ty::Float => format!(
                "CAST({} AS double precision)",
                self.pick(&["0.5", "-1.25", "1e10", "3.0", "0.1"])
            ),
            Ty::Text => self
                .pick(&["'abc'", "''", "'Hello'", "'x y'", "'ZZ'"])
                .to_string(),
            Ty::Bool => self.pick(&["true", "false"]).to_string(),
            Ty::Date => self
                .pick(&[
                    "DATE '2024-01-01'",
                    "DATE '2000-02-29'",
                    "DATE '1999-12-31'",
                ])
                .to_string(),
            Ty::Timestamp => self
                .pick(&[
                    "TIMESTAMP '2024-01-01 10:00:00'",
                    "TIMESTAMP '2000-02-29 23:59:59.25'",
                    "TIMESTAMP '2024-03-31 02:30:00'",
                ])
                .to_string(),
            // With and without an offset (the latter read in the
            // session's zone, at and around DST changes).
            Ty::Timestamptz => self
                .pick(&[
                    "TIMESTAMPTZ '2024-03-10 07:30:00+00'",
                    "TIMESTAMPTZ '2024-11-03 01:30:00'",
                    "TIMESTAMPTZ '2024-03-31 02:30:00'",
                    "TIMESTAMPTZ '2000-02-29 23:59:59.25+05:30'",
                    "TIMESTAMPTZ '2024-10-06 02:30:00'",
                ])
                .to_string(),
        };
        Expr::Leaf(sql, ty)
    }

    fn leaf(&mut self, ty: Ty) -> Expr {
        if self.chance(60) {
            Expr::Leaf(ty.column().to_string(), ty)
        } else {
            self.literal(ty)
        }
    }

    pub fn expr(&mut self, ty: Ty, depth: u32) -> Expr {
        if depth == 0 || self.chance(30) {
            return self.leaf(ty);
        }
        let d = depth - 1;
        match ty {
            t if t.is_number() => self.number(t, d),
            Ty::Date if self.chance(20) => {
                Expr::Cast(Box::new(self.expr(Ty::Timestamptz, d)), Ty::Date)
            }
            Ty::Text if self.chance(15) => {
                if self.chance(50) {
                    Expr::Cast(Box::new(self.expr(Ty::Timestamptz, d)), Ty::Text)
                } else {
                    let (template, ty) = self.pick(&[
                        ("to_char({}, 'YYYY-MM-DD HH24:MI:SS TZ')", Ty::Timestamptz),
                        (
                            "to_char({}, 'FMDay DDth Mon YYYY HH12 AM OF')",
                            Ty::Timestamptz,
                        ),
                        ("to_char({}, 'IYYY-IW-ID Q DDD')", Ty::Timestamp),
                    ]);
                    Expr::Template(template, vec![self.expr(ty, d)], Ty::Text)
                }
            }
            Ty::Text => match self.below(5) {
                0 => Expr::Binary(
                    Box::new(self.expr(Ty::Text, d)),
                    "||",
                    Box::new(self.expr(Ty::Text, d)),
                    Ty::Text,
                ),
                1 => Expr::Call(
                    self.pick(&["upper", "lower"]),
                    vec![self.expr(Ty::Text, d)],
                    Ty::Text,
                ),
                2 => {
                    // Not numeric: a computed numeric has one scale for its
                    // column (see same_but_numeric_scale), which its text
                    // shows.
                    let from = self.pick(&[Ty::Int4, Ty::Int8, Ty::Bool, Ty::Date]);
                    Expr::Cast(Box::new(self.expr(from, d)), Ty::Text)
                }
                3 => self.case(Ty::Text, d),
                _ => self.coalesce(Ty::Text, d),
            },
            Ty::Bool => match self.below(5) {
                0 | 1 => {
                    let t = self.pick(&ALL);
                    let op = self.pick(&["=", "<>", "<", ">=", "IS DISTINCT FROM"]);
                    let r = if t.is_number() {
                        self.pick(&NUMBERS)
                    } else {
                        t
                    };
                    Expr::Binary(
                        Box::new(self.expr(t, d)),
                        op,
                        Box::new(self.expr(r, d)),
                        Ty::Bool,
                    )
                }
                2 => Expr::Binary(
                    Box::new(self.expr(Ty::Bool, d)),
                    self.pick(&["AND", "OR"]),
                    Box::new(self.expr(Ty::Bool, d)),
                    Ty::Bool,
                ),
                3 => Expr::Prefix("NOT", Box::new(self.expr(Ty::Bool, d)), Ty::Bool),
                _ => {
                    let t = self.pick(&ALL);
                    Expr::IsNull(Box::new(self.expr(t, d)))
                }
            },
            Ty::Date => match self.below(3) {
                // Days within the calendar: DataFusion folds `date +
                // integer` to an interval when it plans, so a sum past the
                // calendar fails even where no row would reach it.
                0 => Expr::Binary(
                    Box::new(self.expr(Ty::Date, d)),
                    self.pick(&["+", "-"]),
                    Box::new(Expr::Leaf(
                        self.pick(&["0", "1", "-7", "1000", "65536"]).into(),
                        Ty::Int4,
                    )),
                    Ty::Date,
                ),
                1 => self.case(Ty::Date, d),
                _ => Expr::Cast(Box::new(self.expr(Ty::Timestamp, d)), Ty::Date),
            },
            Ty::Timestamp if self.chance(30) => {
                if self.chance(50) {
                    let zone = self.pick(&[
                        "({} AT TIME ZONE 'UTC')",
                        "({} AT TIME ZONE 'America/Los_Angeles')",
                        "({} AT TIME ZONE 'Asia/Tokyo')",
                    ]);
                    Expr::Template(zone, vec![self.expr(Ty::Timestamptz, d)], Ty::Timestamp)
                } else {
                    Expr::Cast(Box::new(self.expr(Ty::Timestamptz, d)), Ty::Timestamp)
                }
            }
            Ty::Timestamptz => match self.below(7) {
                0 => Expr::Call(
                    "date_trunc",
                    vec![
                        Expr::Leaf(
                            self.pick(&["'day'", "'month'", "'hour'", "'week'", "'year'"])
                                .into(),
                            Ty::Text,
                        ),
                        self.expr(Ty::Timestamptz, d),
                    ],
                    Ty::Timestamptz,
                ),
                1 => {
                    let shift = self.pick(&[
                        "({} + interval '1 day')",
                        "({} - interval '1 month')",
                        "({} + interval '2 hours')",
                        "({} - interval '3 days 04:00:00')",
                    ]);
                    Expr::Template(shift, vec![self.expr(Ty::Timestamptz, d)], Ty::Timestamptz)
                }
                2 => self.case(Ty::Timestamptz, d),
                3 => self.coalesce(Ty::Timestamptz, d),
                4 => Expr::Cast(Box::new(self.expr(Ty::Timestamp, d)), Ty::Timestamptz),
                5 => Expr::Cast(Box::new(self.expr(Ty::Date, d)), Ty::Timestamptz),
                _ => Expr::Template(
                    "({} AT TIME ZONE 'Europe/London')",
                    vec![self.expr(Ty::Timestamp, d)],
                    Ty::Timestamptz,
                ),
            },
            Ty::Timestamp => match self.below(3) {
                0 => Expr::Call(
                    "date_trunc",
                    vec![
                        Expr::Leaf(
                            self.pick(&["'day'", "'month'", "'hour'", "'year'"]).into(),
                            Ty::Text,
                        ),
                        self.expr(Ty::Timestamp, d),
                    ],
                    Ty::Timestamp,
                ),
                1 => self.coalesce(Ty::Timestamp, d),
                _ => Expr::Cast(Box::new(self.expr(Ty::Date, d)), Ty::Timestamp),
            },
            _ => self.leaf(ty),
        }
    }

    fn number(&mut self, ty: Ty, d: u32) -> Expr {
        if ty == Ty::Numeric && self.chance(10) {
            let (template, from) = self.pick(&[
                ("EXTRACT(hour FROM {})", Ty::Timestamptz),
                ("EXTRACT(day FROM {})", Ty::Timestamptz),
                ("EXTRACT(epoch FROM {})", Ty::Timestamptz),
                ("EXTRACT(dow FROM {})", Ty::Timestamptz),
                ("EXTRACT(second FROM {})", Ty::Timestamp),
                ("EXTRACT(week FROM {})", Ty::Date),
                ("EXTRACT(timezone FROM {})", Ty::Timestamptz),
            ]);
            return Expr::Template(template, vec![self.expr(from, d)], Ty::Numeric);
        }
        match self.below(9) {
            0..=2 => {
                // Operands whose PostgreSQL result type is `ty`.
                let (l, r) = self.operands(ty);
                let ops: &[&'static str] = if ty.is_integer() {
                    &["+", "-", "*", "/", "%", "&", "|", "#"]
                } else {
                    &["+", "-", "*"]
                };
                let op = self.pick(ops);
                Expr::Binary(Box::new(self.expr(l, d)), op, Box::new(self.expr(r, d)), ty)
            }
            3 => Expr::Prefix("-", Box::new(self.expr(ty, d)), ty),
            4 => match self.chance(50) {
                true => Expr::Call("abs", vec![self.expr(ty, d)], ty),
                false => Expr::Prefix("@", Box::new(self.expr(ty, d)), ty),
            },
            8 if ty == Ty::Float => {
                let exponent = match self.chance(50) {
                    true => Expr::Leaf(self.pick(&["2", "3", "0.5", "-1"]).into(), Ty::Int4),
                    false => self.expr(Ty::Float, d),
                };
                Expr::Binary(Box::new(self.expr(ty, d)), "^", Box::new(exponent), ty)
            }
            8 if ty.is_integer() => match self.chance(50) {
                true => Expr::Prefix("~", Box::new(self.expr(ty, d)), ty),
                // Shifts by less than the narrowest width: a shift as wide
                // as its operand is C's undefined behaviour in PostgreSQL.
                false => Expr::Binary(
                    Box::new(self.expr(ty, d)),
                    self.pick(&["<<", ">>"]),
                    Box::new(Expr::Leaf(
                        self.pick(&["0", "1", "3", "15"]).into(),
                        Ty::Int4,
                    )),
                    ty,
                ),
            },
            5 => self.case(ty, d),
            6 => self.coalesce(ty, d),
            _ => {
                // Not float to numeric: PostgreSQL rounds the float to 15
                // significant digits first, QuiverDB converts its exact
                // binary value (a difference the README lists).
                let from = loop {
                    let from = self.pick(&NUMBERS);
                    if !(ty == Ty::Numeric && from == Ty::Float) {
                        break from;
                    }
                };
                Expr::Cast(Box::new(self.expr(from, d)), ty)
            }
        }
    }

    /// Two operand types whose arithmetic is `ty` in PostgreSQL.
    fn operands(&mut self, ty: Ty) -> (Ty, Ty) {
        let narrower: Vec<Ty> = NUMBERS
            .iter()
            .copied()
            .filter(|t| t.arithmetic(ty) == ty && *t != Ty::Float || ty == Ty::Float)
            .collect();
        let other = self.pick(&narrower);
        if self.chance(50) {
            (ty, other)
        } else {
            (other, ty)
        }
    }

    fn case(&mut self, ty: Ty, d: u32) -> Expr {
        // Never a constant condition (not even `false AND ...`): PostgreSQL
        // folds `CASE WHEN true THEN x ...` to `x` when it plans, and
        // reports x's typmod.
        let condition = Expr::Binary(
            Box::new(self.expr(Ty::Bool, d)),
            "=",
            Box::new(Expr::Leaf("(t.id > 0)".into(), Ty::Bool)),
            Ty::Bool,
        );
        Expr::Case(
            Box::new(condition),
            Box::new(self.expr(ty, d)),
            Box::new(self.expr(ty, d)),
            ty,
        )
    }

    fn coalesce(&mut self, ty: Ty, d: u32) -> Expr {
        Expr::Call("coalesce", vec![self.expr(ty, d), self.expr(ty, d)], ty)
    }
}
