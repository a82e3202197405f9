//! One error type for the whole database, and its one mapping to a Postgres SQLSTATE.

use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;
use datafusion::sql::sqlparser::parser::ParserError;

pub type Result<T, E = QuiverError> = std::result::Result<T, E>;

/// What is wrong with COPY data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyFault {
    /// A value not of its type's form.
    Value,
    /// A number of the right form that its type cannot hold.
    OutOfRange,
    /// A row with too few or too many fields, or unreadable framing.
    Row,
}

/// Everything a statement can fail with. Each variant names one condition a
/// person can act on; [`QuiverError::sqlstate`] is the only place that maps
/// them to SQLSTATE codes.
#[derive(Debug, thiserror::Error)]
pub enum QuiverError {
    #[error("syntax error: {0}")]
    Syntax(String),
    /// A 42601 whose message is a whole sentence of its own.
    #[error("{0}")]
    InvalidStatement(String),
    /// A 42601 from the parser, worded as PostgreSQL words it, with the
    /// 1-based character position in the query text where it was found.
    #[error("{message}")]
    SyntaxAt { message: String, position: usize },
    #[error("relation \"{0}\" does not exist")]
    UndefinedTable(String),
    #[error("relation \"{0}\" already exists")]
    DuplicateTable(String),
    #[error("schema \"{0}\" does not exist")]
    UndefinedSchema(String),
    #[error("schema \"{0}\" already exists")]
    DuplicateSchema(String),
    #[error("column \"{0}\" does not exist")]
    UndefinedColumn(String),
    #[error("column \"{column}\" of relation \"{table}\" does not exist")]
    UndefinedColumnOf { column: String, table: String },
    #[error("column \"{column}\" of relation \"{table}\" already exists")]
    DuplicateColumnOf { column: String, table: String },
    #[error("{0}")]
    UndefinedObject(String),
    #[error("{0}")]
    DuplicateObject(String),
    #[error("column \"{column}\" of relation \"{table}\" contains null values")]
    NotNullExisting { table: String, column: String },
    #[error("{0}")]
    CheckViolation(String),
    #[error("{0}")]
    CardinalityViolation(String),
    #[error("{0}")]
    InvalidColumnReference(String),
    #[error("{0}")]
    AmbiguousColumn(String),
    /// A change through a view PostgreSQL would not make (0A000).
    #[error("{message}")]
    ViewNotUpdatable { message: String, detail: String },
    #[error("column \"{0}\" specified more than once")]
    DuplicateColumn(String),
    #[error("type \"{0}\" does not exist")]
    UndefinedType(String),
    #[error("unrecognized configuration parameter \"{0}\"")]
    UnknownSetting(String),
    #[error("invalid value for parameter \"{name}\": \"{value}\"")]
    InvalidSettingValue { name: String, value: String },
    #[error(
        "null value in column \"{column}\" of relation \"{table}\" violates not-null constraint"
    )]
    NotNullViolation { table: String, column: String },
    #[error("duplicate key value violates unique constraint \"{constraint}\"")]
    UniqueViolation { constraint: String, detail: String },
    #[error("{message}")]
    ForeignKeyViolation { message: String, detail: String },
    /// A FOREIGN KEY that cannot be made (42830).
    #[error("{0}")]
    InvalidForeignKey(String),
    /// CREATE UNIQUE INDEX (or ADD UNIQUE) over rows that repeat a key.
    #[error("could not create unique index \"{index}\"")]
    UniqueIndexBuild { index: String, detail: String },
    #[error("value too long for type {0}")]
    StringTooLong(String),
    #[error("invalid input syntax for type {type_name}: \"{value}\"")]
    InvalidTextRepresentation { type_name: String, value: String },
    /// A date or time PostgreSQL would not read either (22007).
    #[error("invalid input syntax for type {type_name}: \"{value}\"")]
    InvalidDatetimeFormat { type_name: String, value: String },
    /// 22007 with PostgreSQL's own sentence (to_timestamp's template
    /// errors).
    #[error("{0}")]
    DatetimeTemplate(String),
    /// COPY data that cannot be read: a value of the wrong form (22P02),
    /// a number out of its type's range (22003) or a malformed row
    /// (22P04). `context` says where, as Postgres' CONTEXT line does.
    #[error("{message}")]
    CopyData {
        message: String,
        context: String,
        fault: CopyFault,
    },
    /// A name Postgres keeps for system objects (42939).
    #[error("{0}")]
    ReservedName(String),
    #[error("{0}")]
    InvalidParameterValue(String),
    /// 2201G: width_bucket's bounds or count.
    #[error("{0}")]
    InvalidWidthBucketArgument(String),
    /// 2201E: the logarithm of zero or of a negative number.
    #[error("{0}")]
    InvalidLogarithmArgument(String),
    /// 2201F: a square root or a power PostgreSQL refuses.
    #[error("{0}")]
    InvalidPowerArgument(String),
    /// 22P05: a character the text type cannot hold (`\u0000` in jsonb).
    #[error("{0}")]
    UntranslatableCharacter(String),
    #[error("{0}")]
    DatatypeMismatch(String),
    #[error("{0}")]
    FeatureNotSupported(String),
    #[error("{0}")]
    DependentObjectsStillExist(String),
    #[error("{0}")]
    WrongObjectType(String),
    #[error("{0}")]
    InvalidTableDefinition(String),
    #[error("{0}")]
    SerializationFailure(String),
    #[error("current transaction is aborted, commands ignored until end of transaction block")]
    InFailedTransaction,
    #[error("{0}")]
    NoActiveTransaction(String),
    /// 42P03: DECLARE of a cursor name in use.
    #[error("{0}")]
    DuplicateCursor(String),
    /// 34000: a cursor that does not exist.
    #[error("{0}")]
    UndefinedCursor(String),
    /// 25001: a statement that cannot run inside a transaction block.
    #[error("{0}")]
    ActiveTransaction(String),
    /// 25006: a change in a read-only transaction or database.
    #[error("{0}")]
    ReadOnly(String),
    /// 22003: a number out of its type's range.
    #[error("{0}")]
    OutOfRange(String),
    /// 22008: a date or time past the calendar.
    #[error("{0}")]
    DatetimeOverflow(String),
    /// 55000: an object that exists but cannot be used as it is.
    #[error("{0}")]
    BrokenObject(String),
    /// 55000: the object is not in the state the call needs (currval
    /// before nextval in this session).
    #[error("{0}")]
    NotInPrerequisiteState(String),
    /// 08P01: a client broke the protocol (a malformed replication
    /// message); the connection ends.
    #[error("{0}")]
    ProtocolViolation(String),
    /// 55006: the object is in use by someone else (a replication slot
    /// another replica streams from).
    #[error("{0}")]
    ObjectInUse(String),
    /// 2200H: a sequence reached its bound and does not cycle.
    #[error("{0}")]
    SequenceLimit(String),
    /// 428C9: a value given for a GENERATED ALWAYS column.
    #[error("{message}")]
    GeneratedAlways {
        message: String,
        detail: String,
        hint: Option<&'static str>,
    },
    #[error("savepoint \"{0}\" does not exist")]
    UndefinedSavepoint(String),
    #[error("role \"{0}\" does not exist")]
    UndefinedRole(String),
    /// 58P01: a server file that is not there.
    #[error("{0}")]
    UndefinedFile(String),
    /// 42501: the current role may not do this.
    #[error("{0}")]
    InsufficientPrivilege(String),
    /// 53200: a query or a table would not fit in its memory limit.
    #[error("{0}")]
    OutOfMemory(String),
    /// 54001: a statement nested or chained beyond what we evaluate safely.
    #[error("{0}")]
    StatementTooComplex(String),
    /// 54000: beyond a fixed limit of the implementation.
    #[error("{0}")]
    ProgramLimitExceeded(String),
    #[error("canceling statement due to user request")]
    QueryCanceled,
    #[error("canceling statement due to statement timeout")]
    StatementTimeout,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{path} is damaged at byte {offset}: {reason}")]
    Corrupt {
        path: String,
        offset: u64,
        reason: String,
    },
    #[error("{0}")]
    Internal(String),
    #[error("{}", datafusion_message(.0))]
    DataFusion(#[from] DataFusionError),
}

impl From<ParserError> for QuiverError {
    fn from(e: ParserError) -> Self {
        if matches!(e, ParserError::RecursionLimitExceeded) {
            return QuiverError::StatementTooComplex(parser_message(&e));
        }
        QuiverError::Syntax(parser_message(&e))
    }
}

impl From<datafusion::sql::sqlparser::tokenizer::TokenizerError> for QuiverError {
    fn from(e: datafusion::sql::sqlparser::tokenizer::TokenizerError) -> Self {
        QuiverError::Syntax(e.message)
    }
}

impl From<ArrowError> for QuiverError {
    fn from(e: ArrowError) -> Self {
        QuiverError::DataFusion(DataFusionError::ArrowError(Box::new(e), None))
    }
}

/// The Postgres error codes QuiverDB reports (Appendix A of the Postgres manual).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlState {
    SyntaxError,
    UndefinedTable,
    DuplicateTable,
    UndefinedSchema,
    DuplicateSchema,
    UndefinedColumn,
    DuplicateColumn,
    UndefinedObject,
    DuplicateObject,
    AmbiguousColumn,
    GroupingError,
    InvalidColumnReference,
    CheckViolation,
    CardinalityViolation,
    UndefinedFunction,
    DatatypeMismatch,
    InvalidParameterValue,
    InvalidWidthBucketArgument,
    InvalidArgumentForLogarithm,
    InvalidArgumentForPowerFunction,
    NotNullViolation,
    UniqueViolation,
    ForeignKeyViolation,
    InvalidForeignKey,
    StringDataRightTruncation,
    BadCopyFileFormat,
    ReservedName,
    InvalidTextRepresentation,
    UntranslatableCharacter,
    InvalidDatetimeFormat,
    DivisionByZero,
    NumericValueOutOfRange,
    DatetimeFieldOverflow,
    FeatureNotSupported,
    DependentObjectsStillExist,
    WrongObjectType,
    InvalidTableDefinition,
    QueryCanceled,
    SerializationFailure,
    InFailedSqlTransaction,
    NoActiveSqlTransaction,
    ActiveSqlTransaction,
    InvalidCursorName,
    DuplicateCursor,
    ReadOnlySqlTransaction,
    ObjectNotInPrerequisiteState,
    ObjectInUse,
    ProtocolViolation,
    SequenceGeneratorLimitExceeded,
    GeneratedAlways,
    SavepointException,
    OutOfMemory,
    UndefinedFile,
    InsufficientPrivilege,
    StatementTooComplex,
    ProgramLimitExceeded,
    IoError,
    DataCorrupted,
    InternalError,
}

impl SqlState {
    pub fn code(self) -> &'static str {
        match self {
            SqlState::SyntaxError => "42601",
            SqlState::UndefinedTable => "42P01",
            SqlState::DuplicateTable => "42P07",
            SqlState::UndefinedSchema => "3F000",
            SqlState::DuplicateSchema => "42P06",
            SqlState::UndefinedColumn => "42703",
            SqlState::DuplicateColumn => "42701",
            SqlState::UndefinedObject => "42704",
            SqlState::DuplicateObject => "42710",
            SqlState::AmbiguousColumn => "42702",
            SqlState::GroupingError => "42803",
            SqlState::InvalidColumnReference => "42P10",
            SqlState::CheckViolation => "23514",
            SqlState::CardinalityViolation => "21000",
            SqlState::UndefinedFunction => "42883",
            SqlState::DatatypeMismatch => "42804",
            SqlState::InvalidParameterValue => "22023",
            SqlState::InvalidWidthBucketArgument => "2201G",
            SqlState::InvalidArgumentForLogarithm => "2201E",
            SqlState::InvalidArgumentForPowerFunction => "2201F",
            SqlState::NotNullViolation => "23502",
            SqlState::UniqueViolation => "23505",
            SqlState::ForeignKeyViolation => "23503",
            SqlState::InvalidForeignKey => "42830",
            SqlState::StringDataRightTruncation => "22001",
            SqlState::BadCopyFileFormat => "22P04",
            SqlState::ReservedName => "42939",
            SqlState::InvalidTextRepresentation => "22P02",
            SqlState::UntranslatableCharacter => "22P05",
            SqlState::InvalidDatetimeFormat => "22007",
            SqlState::DivisionByZero => "22012",
            SqlState::NumericValueOutOfRange => "22003",
            SqlState::DatetimeFieldOverflow => "22008",
            SqlState::FeatureNotSupported => "0A000",
            SqlState::DependentObjectsStillExist => "2BP01",
            SqlState::WrongObjectType => "42809",
            SqlState::InvalidTableDefinition => "42P16",
            SqlState::QueryCanceled => "57014",
            SqlState::SerializationFailure => "40001",
            SqlState::InFailedSqlTransaction => "25P02",
            SqlState::NoActiveSqlTransaction => "25P01",
            SqlState::ActiveSqlTransaction => "25001",
            SqlState::InvalidCursorName => "34000",
            SqlState::DuplicateCursor => "42P03",
            SqlState::ReadOnlySqlTransaction => "25006",
            SqlState::ObjectNotInPrerequisiteState => "55000",
            SqlState::ObjectInUse => "55006",
            SqlState::ProtocolViolation => "08P01",
            SqlState::SequenceGeneratorLimitExceeded => "2200H",
            SqlState::GeneratedAlways => "428C9",
            SqlState::SavepointException => "3B001",
            SqlState::OutOfMemory => "53200",
            SqlState::InsufficientPrivilege => "42501",
            SqlState::UndefinedFile => "58P01",
            SqlState::StatementTooComplex => "54001",
            SqlState::ProgramLimitExceeded => "54000",
            SqlState::IoError => "58030",
            SqlState::DataCorrupted => "XX001",
            SqlState::InternalError => "XX000",
        }
    }
}

impl QuiverError {
    pub fn sqlstate(&self) -> SqlState {
        match self {
            QuiverError::Syntax(_)
            | QuiverError::InvalidStatement(_)
            | QuiverError::SyntaxAt { .. } => SqlState::SyntaxError,
            QuiverError::UndefinedTable(_) => SqlState::UndefinedTable,
            QuiverError::DuplicateTable(_) => SqlState::DuplicateTable,
            QuiverError::UndefinedSchema(_) => SqlState::UndefinedSchema,
            QuiverError::DuplicateSchema(_) => SqlState::DuplicateSchema,
            QuiverError::UndefinedColumn(_) => SqlState::UndefinedColumn,
            QuiverError::DuplicateColumn(_) | QuiverError::DuplicateColumnOf { .. } => {
                SqlState::DuplicateColumn
            }
            QuiverError::UndefinedColumnOf { .. } => SqlState::UndefinedColumn,
            QuiverError::UndefinedObject(_) => SqlState::UndefinedObject,
            QuiverError::DuplicateObject(_) => SqlState::DuplicateObject,
            QuiverError::NotNullExisting { .. } => SqlState::NotNullViolation,
            QuiverError::CheckViolation(_) => SqlState::CheckViolation,
            QuiverError::CardinalityViolation(_) => SqlState::CardinalityViolation,
            QuiverError::InvalidColumnReference(_) => SqlState::InvalidColumnReference,
            QuiverError::AmbiguousColumn(_) => SqlState::AmbiguousColumn,
            QuiverError::ViewNotUpdatable { .. } => SqlState::FeatureNotSupported,
            QuiverError::UndefinedType(_) | QuiverError::UnknownSetting(_) => {
                SqlState::UndefinedObject
            }
            QuiverError::InvalidSettingValue { .. } | QuiverError::InvalidParameterValue(_) => {
                SqlState::InvalidParameterValue
            }
            QuiverError::InvalidWidthBucketArgument(_) => SqlState::InvalidWidthBucketArgument,
            QuiverError::InvalidLogarithmArgument(_) => SqlState::InvalidArgumentForLogarithm,
            QuiverError::InvalidPowerArgument(_) => SqlState::InvalidArgumentForPowerFunction,
            QuiverError::NotNullViolation { .. } => SqlState::NotNullViolation,
            QuiverError::ForeignKeyViolation { .. } => SqlState::ForeignKeyViolation,
            QuiverError::InvalidForeignKey(_) => SqlState::InvalidForeignKey,
            QuiverError::UniqueViolation { .. } | QuiverError::UniqueIndexBuild { .. } => {
                SqlState::UniqueViolation
            }
            QuiverError::StringTooLong(_) => SqlState::StringDataRightTruncation,
            QuiverError::CopyData { fault, .. } => match fault {
                CopyFault::Value => SqlState::InvalidTextRepresentation,
                CopyFault::OutOfRange => SqlState::NumericValueOutOfRange,
                CopyFault::Row => SqlState::BadCopyFileFormat,
            },
            QuiverError::ReservedName(_) => SqlState::ReservedName,
            QuiverError::InvalidTextRepresentation { .. } => SqlState::InvalidTextRepresentation,
            QuiverError::DatetimeTemplate(_) => SqlState::InvalidDatetimeFormat,
            QuiverError::InvalidDatetimeFormat { .. } => SqlState::InvalidDatetimeFormat,
            QuiverError::DatatypeMismatch(_) => SqlState::DatatypeMismatch,
            QuiverError::UntranslatableCharacter(_) => SqlState::UntranslatableCharacter,
            QuiverError::FeatureNotSupported(_) => SqlState::FeatureNotSupported,
            QuiverError::DependentObjectsStillExist(_) => SqlState::DependentObjectsStillExist,
            QuiverError::WrongObjectType(_) => SqlState::WrongObjectType,
            QuiverError::InvalidTableDefinition(_) => SqlState::InvalidTableDefinition,
            QuiverError::QueryCanceled | QuiverError::StatementTimeout => SqlState::QueryCanceled,
            QuiverError::UndefinedRole(_) => SqlState::UndefinedObject,
            QuiverError::UndefinedFile(_) => SqlState::UndefinedFile,
            QuiverError::InsufficientPrivilege(_) => SqlState::InsufficientPrivilege,
            QuiverError::OutOfMemory(_) => SqlState::OutOfMemory,
            QuiverError::StatementTooComplex(_) => SqlState::StatementTooComplex,
            QuiverError::ProgramLimitExceeded(_) => SqlState::ProgramLimitExceeded,
            QuiverError::SerializationFailure(_) => SqlState::SerializationFailure,
            QuiverError::InFailedTransaction => SqlState::InFailedSqlTransaction,
            QuiverError::NoActiveTransaction(_) => SqlState::NoActiveSqlTransaction,
            QuiverError::ActiveTransaction(_) => SqlState::ActiveSqlTransaction,
            QuiverError::UndefinedCursor(_) => SqlState::InvalidCursorName,
            QuiverError::DuplicateCursor(_) => SqlState::DuplicateCursor,
            QuiverError::ReadOnly(_) => SqlState::ReadOnlySqlTransaction,
            QuiverError::ObjectInUse(_) => SqlState::ObjectInUse,
            QuiverError::ProtocolViolation(_) => SqlState::ProtocolViolation,
            QuiverError::BrokenObject(_) | QuiverError::NotInPrerequisiteState(_) => {
                SqlState::ObjectNotInPrerequisiteState
            }
            QuiverError::SequenceLimit(_) => SqlState::SequenceGeneratorLimitExceeded,
            QuiverError::GeneratedAlways { .. } => SqlState::GeneratedAlways,
            QuiverError::OutOfRange(_) => SqlState::NumericValueOutOfRange,
            QuiverError::DatetimeOverflow(_) => SqlState::DatetimeFieldOverflow,
            QuiverError::UndefinedSavepoint(_) => SqlState::SavepointException,
            QuiverError::Io(_) => SqlState::IoError,
            QuiverError::Corrupt { .. } => SqlState::DataCorrupted,
            QuiverError::Internal(_) => SqlState::InternalError,
            QuiverError::DataFusion(e) => datafusion_sqlstate(e),
        }
    }

    /// Extra detail for the client's DETAIL field, when there is any.
    pub fn detail(&self) -> Option<String> {
        match self {
            QuiverError::UniqueViolation { detail, .. }
            | QuiverError::UniqueIndexBuild { detail, .. }
            | QuiverError::ForeignKeyViolation { detail, .. }
            | QuiverError::ViewNotUpdatable { detail, .. }
            | QuiverError::GeneratedAlways { detail, .. } => Some(detail.clone()),
            _ => None,
        }
    }

    /// What the client might do about it, for the HINT field.
    pub fn hint(&self) -> Option<String> {
        match self {
            QuiverError::GeneratedAlways { hint, .. } => hint.map(str::to_string),
            _ => None,
        }
    }

    /// Where in the query text the error was found (1-based characters),
    /// for the client's POSITION field.
    pub fn position(&self) -> Option<usize> {
        match self {
            QuiverError::SyntaxAt { position, .. } => Some(*position),
            _ => None,
        }
    }

    /// Where the error happened, for the client's CONTEXT field.
    pub fn context(&self) -> Option<String> {
        match self {
            QuiverError::CopyData { context, .. } => Some(context.clone()),
            _ => None,
        }
    }
}

/// Shorthand for the common "this statement uses something we do not do" error.
pub fn not_supported(what: impl std::fmt::Display) -> QuiverError {
    QuiverError::FeatureNotSupported(format!("{what} is not supported"))
}

/// DataFusion reports errors as strings inside a handful of variants; the
/// SQLSTATE is recovered from the variant and, for planning errors, from the
/// message. Keep this the only place that looks inside DataFusion's messages.
fn datafusion_sqlstate(e: &DataFusionError) -> SqlState {
    match e.find_root() {
        // Nested past the parser's limit: 54001, as PostgreSQL's "stack
        // depth limit exceeded".
        DataFusionError::SQL(err, _)
            if matches!(err.as_ref(), ParserError::RecursionLimitExceeded) =>
        {
            SqlState::StatementTooComplex
        }
        DataFusionError::SQL(..) => SqlState::SyntaxError,
        DataFusionError::SchemaError(err, _) => {
            use datafusion::common::SchemaError;
            match err.as_ref() {
                SchemaError::FieldNotFound { .. } => SqlState::UndefinedColumn,
                SchemaError::DuplicateQualifiedField { .. }
                | SchemaError::DuplicateUnqualifiedField { .. } => SqlState::DuplicateColumn,
                SchemaError::AmbiguousReference { .. } => SqlState::AmbiguousColumn,
            }
        }
        DataFusionError::ArrowError(err, _) => arrow_sqlstate(err),
        DataFusionError::ResourcesExhausted(_) => SqlState::OutOfMemory,
        // Our own errors raised inside functions DataFusion runs.
        DataFusionError::External(inner) => match inner.downcast_ref::<QuiverError>() {
            Some(ours) => ours.sqlstate(),
            None => SqlState::InternalError,
        },
        DataFusionError::NotImplemented(_) => SqlState::FeatureNotSupported,
        DataFusionError::IoError(_) => SqlState::IoError,
        // Planning errors are about the query (PostgreSQL's class 42);
        // execution errors that no rule below names are internal failures,
        // never syntax errors.
        DataFusionError::Plan(msg) => message_sqlstate(msg).unwrap_or(SqlState::SyntaxError),
        DataFusionError::Execution(msg) => message_sqlstate(msg).unwrap_or(SqlState::InternalError),
        _ => SqlState::InternalError,
    }
}

fn arrow_sqlstate(err: &ArrowError) -> SqlState {
    match err {
        ArrowError::DivideByZero => SqlState::DivisionByZero,
        ArrowError::ArithmeticOverflow(_) => SqlState::NumericValueOutOfRange,
        ArrowError::CastError(msg) | ArrowError::ParseError(msg) => {
            let msg = msg.to_ascii_lowercase();
            if msg.contains("overflow")
                || msg.contains("too large")
                || msg.contains("out of range")
                || msg.contains("can't cast value")
            {
                SqlState::NumericValueOutOfRange
            } else {
                SqlState::InvalidTextRepresentation
            }
        }
        ArrowError::InvalidArgumentError(msg) if msg.contains("precision") => {
            SqlState::NumericValueOutOfRange
        }
        // `date + integer` past the calendar: DataFusion overflows the
        // interval it adds.
        ArrowError::ComputeError(msg) if msg.contains("Cannot cast to Interval") => {
            SqlState::DatetimeFieldOverflow
        }
        ArrowError::ComputeError(msg) if msg.contains("overflow") => {
            SqlState::NumericValueOutOfRange
        }
        _ => SqlState::InternalError,
    }
}

fn message_sqlstate(msg: &str) -> Option<SqlState> {
    let lower = msg.to_ascii_lowercase();
    Some(if lower.contains("table") && lower.contains("not found") {
        SqlState::UndefinedTable
    } else if lower.contains("divide by zero") || lower.contains("division by zero") {
        SqlState::DivisionByZero
    } else if lower.contains("overflow")
        || lower.contains("out of range")
        || lower.contains("can't cast value")
    {
        SqlState::NumericValueOutOfRange
    } else if lower.contains("invalid function")
        || lower.contains("function") && lower.contains("not found")
        || lower.contains("no function matches")
        || lower.contains("operator does not exist")
    {
        SqlState::UndefinedFunction
    } else if lower.contains("cannot infer common")
        || lower.contains("non-boolean predicate")
        || lower.contains("coerc")
        || lower.contains("cannot be cast")
        || lower.contains("mismatch")
        || lower.contains("does not support")
        || lower.contains("unsupported") && lower.contains("type")
        || lower.contains("must be boolean")
        || lower.contains("expected type")
    {
        SqlState::DatatypeMismatch
    } else if lower.contains("cannot cast")
        || lower.contains("invalid input")
        || lower.contains("malformed array literal")
    {
        SqlState::InvalidTextRepresentation
    } else if lower.contains("not implemented")
        || lower.contains("unsupported")
        || lower.contains("are not supported")
    {
        SqlState::FeatureNotSupported
    } else if lower.contains("must be in group by") || lower.contains("must appear in the group by")
    {
        SqlState::GroupingError
    } else if lower.contains("for select distinct, order by expressions") {
        SqlState::InvalidColumnReference
    } else {
        return None;
    })
}

/// PostgreSQL's sentence for a planning error DataFusion words its own way.
fn postgres_plan_message(msg: &str) -> Option<String> {
    if msg.starts_with("For SELECT DISTINCT, ORDER BY expressions") {
        return Some("for SELECT DISTINCT, ORDER BY expressions must appear in select list".into());
    }
    // "Column in SELECT must be in GROUP BY or an aggregate function: ...
    // column "t.b" must appear in the GROUP BY clause or must be part of
    // an aggregate function, currently only ..."
    if msg.starts_with("Column in SELECT must be in GROUP BY") {
        let column = msg.split('"').nth(1)?;
        return Some(format!(
            "column \"{column}\" must appear in the GROUP BY clause or be used in an aggregate function"
        ));
    }
    None
}

/// DataFusion prefixes messages with its own layer names ("Error during
/// planning: ..."); a Postgres user wants only the sentence.
fn datafusion_message(e: &DataFusionError) -> String {
    let root = e.find_root();
    match root {
        DataFusionError::SQL(err, _) => parser_message(err),
        DataFusionError::Plan(msg) | DataFusionError::Execution(msg) => {
            if let Some(name) = missing_table_name(msg) {
                return format!("relation \"{name}\" does not exist");
            }
            match postgres_cast_message(msg).or_else(|| postgres_plan_message(msg)) {
                Some(message) => message,
                // An execution error may carry a plan dump after its
                // sentence; the client gets the sentence.
                None if matches!(root, DataFusionError::Execution(_)) => first_line(msg),
                None => msg.clone(),
            }
        }
        DataFusionError::ArrowError(err, _) => match err.as_ref() {
            ArrowError::DivideByZero => "division by zero".to_string(),
            ArrowError::ArithmeticOverflow(m) => format!("value out of range: {m}"),
            ArrowError::CastError(m) | ArrowError::ParseError(m) => {
                postgres_cast_message(m).unwrap_or_else(|| m.clone())
            }
            ArrowError::ComputeError(m) if m.contains("Cannot cast to Interval") => {
                "date out of range".to_string()
            }
            ArrowError::InvalidArgumentError(m) => {
                decimal_overflow_message(m).unwrap_or_else(|| m.clone())
            }
            other => other.to_string(),
        },
        DataFusionError::SchemaError(err, _) => {
            use datafusion::common::SchemaError;
            match err.as_ref() {
                SchemaError::FieldNotFound { field, .. } => {
                    format!("column \"{}\" does not exist", field.name())
                }
                SchemaError::AmbiguousReference { field } => {
                    format!("column reference \"{}\" is ambiguous", field.name())
                }
                other => other.to_string(),
            }
        }
        DataFusionError::NotImplemented(msg) => match msg
            .strip_prefix("Query ")
            .and_then(|m| m.strip_suffix(" not implemented yet"))
        {
            // A CTE whose body is not a query.
            Some(statement)
                if ["INSERT", "UPDATE", "DELETE", "MERGE"]
                    .iter()
                    .any(|k| statement.to_ascii_uppercase().starts_with(k)) =>
            {
                "data-modifying statements in WITH are not supported: run the INSERT, UPDATE \
                 or DELETE ... RETURNING on its own"
                    .to_string()
            }
            _ => format!("{msg} is not supported"),
        },
        DataFusionError::External(inner) => match inner.downcast_ref::<QuiverError>() {
            Some(ours) => ours.to_string(),
            None => inner.to_string(),
        },
        DataFusionError::ResourcesExhausted(msg) => format!("out of memory: {msg}"),
        // Internal errors end in a plea to file a DataFusion bug, and some
        // carry plans: one line is what a person reads.
        other => first_line(&other.to_string()),
    }
}

/// Arrow says `100.00 is too large to store in a Decimal128 of precision
/// 4. Max is 99.99`; PostgreSQL says `numeric field overflow`, and what
/// the field holds.
fn decimal_overflow_message(msg: &str) -> Option<String> {
    let (_, rest) = msg.split_once(" is too large to store in a Decimal128 of precision ")?;
    let (precision, max) = rest.split_once(". Max is ")?;
    let precision: u32 = precision.parse().ok()?;
    let scale = max.split_once('.').map_or(0, |(_, f)| f.len() as u32);
    Some(format!(
        "numeric field overflow: a field with precision {precision}, scale {scale} must \
         round to an absolute value less than 10^{}",
        precision.saturating_sub(scale)
    ))
}

fn first_line(msg: &str) -> String {
    msg.lines()
        .next()
        .unwrap_or_default()
        .trim_end()
        .to_string()
}

/// Arrow says `Cannot cast string 'abc' to value of Int32 type`; Postgres
/// says `invalid input syntax for type integer: "abc"`.
fn postgres_cast_message(msg: &str) -> Option<String> {
    if let Some(rest) = msg.strip_prefix("Inconsistent data length across values list: got ") {
        let numbers: Vec<usize> = rest
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse().ok())
            .collect();
        // [got, row, expected]
        return Some(match numbers.as_slice() {
            [got, 0, expected] if got > expected => {
                "INSERT has more expressions than target columns".to_string()
            }
            _ => "VALUES lists must all be the same length".to_string(),
        });
    }
    if let Some(rest) = msg.strip_prefix("Can't cast value ") {
        let (_, arrow_type) = rest.rsplit_once(" to type ")?;
        return match arrow_type {
            "Int16" | "Int32" | "Int64" => {
                Some(format!("{} out of range", postgres_type_name(arrow_type)?))
            }
            _ => None,
        };
    }
    if let Some(rest) = msg.strip_prefix("Cannot create filter with non-boolean predicate '") {
        let (_, arrow_type) = rest.rsplit_once("' returning ")?;
        return Some(format!(
            "argument of WHERE must be type boolean, not type {}",
            postgres_type_name(arrow_type)?
        ));
    }
    let rest = msg.strip_prefix("Cannot cast string '")?;
    let (value, rest) = rest.rsplit_once("' to value of ")?;
    let arrow_type = rest.strip_suffix(" type")?;
    Some(format!(
        "invalid input syntax for type {}: \"{value}\"",
        postgres_type_name(arrow_type)?
    ))
}

/// The Postgres name of an Arrow type as Arrow spells it in messages.
fn postgres_type_name(arrow_type: &str) -> Option<&'static str> {
    Some(match arrow_type {
        "Int16" => "smallint",
        "Int32" => "integer",
        "Int64" => "bigint",
        "Float32" => "real",
        "Float64" => "double precision",
        "Boolean" => "boolean",
        "Date32" => "date",
        "Utf8" | "Utf8View" | "LargeUtf8" => "text",
        t if t.starts_with("Decimal") => "numeric",
        t if t.starts_with("Timestamp") => "timestamp",
        t if t.starts_with("Time64") => "time",
        _ => return None,
    })
}

/// DataFusion says `table 'quiver.public.t' not found`; Postgres says
/// `relation "t" does not exist`.
fn missing_table_name(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("table '")?;
    let name = rest.strip_suffix("' not found")?;
    let short = name
        .strip_prefix(&format!("{}.", crate::names::CATALOG_NAME))
        .unwrap_or(name);
    let short = short.strip_prefix("public.").unwrap_or(short);
    Some(short.to_string())
}

fn parser_message(e: &ParserError) -> String {
    match e {
        ParserError::ParserError(m) | ParserError::TokenizerError(m) => m.clone(),
        ParserError::RecursionLimitExceeded => "statement is nested too deeply".to_string(),
    }
}

/// Our own errors come back out of DataFusion's wrapper as they were.
pub fn from_datafusion(e: datafusion::error::DataFusionError) -> QuiverError {
    match e {
        datafusion::error::DataFusionError::External(inner) => {
            match inner.downcast::<QuiverError>() {
                Ok(ours) => *ours,
                Err(other) => {
                    QuiverError::DataFusion(datafusion::error::DataFusionError::External(other))
                }
            }
        }
        other => QuiverError::DataFusion(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_table_is_42p01_with_postgres_wording() {
        let e = QuiverError::from(DataFusionError::Plan(
            "table 'quiver.public.nope' not found".to_string(),
        ));
        assert_eq!(e.sqlstate().code(), "42P01");
        assert_eq!(e.to_string(), "relation \"nope\" does not exist");
    }

    #[test]
    fn cast_errors_read_like_postgres() {
        let e = QuiverError::from(ArrowError::CastError(
            "Cannot cast string 'abc' to value of Int32 type".into(),
        ));
        assert_eq!(e.sqlstate().code(), "22P02");
        assert_eq!(
            e.to_string(),
            "invalid input syntax for type integer: \"abc\""
        );
    }

    #[test]
    fn a_numeric_too_wide_for_its_field_is_a_field_overflow() {
        let e = QuiverError::from(ArrowError::InvalidArgumentError(
            "100.00 is too large to store in a Decimal128 of precision 4. Max is 99.99".into(),
        ));
        assert_eq!(e.sqlstate().code(), "22003");
        assert_eq!(
            e.to_string(),
            "numeric field overflow: a field with precision 4, scale 2 must round to an \
             absolute value less than 10^2"
        );
    }

    #[test]
    fn divide_by_zero_is_22012() {
        let e = QuiverError::from(ArrowError::DivideByZero);
        assert_eq!(e.sqlstate().code(), "22012");
        assert_eq!(e.to_string(), "division by zero");
    }
}
