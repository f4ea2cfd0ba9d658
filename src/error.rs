//! The one error type of the library.
//!
//! Every error carries a [`ErrorKind`] that says *where* it came from, an
//! optional entry sequence number, a one-line message and an optional hint on
//! how to fix the problem. The binary prints `error: <message>` and the hint,
//! and maps the kind to an exit code (see [`Error::exit_code`]).

use std::fmt;

/// Where an error came from. The kind decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The user asked for something malformed (option, value, amount, date).
    Input,
    /// A file could not be read or written.
    Io,
    /// A key file is missing, malformed, unprotected or not allowed to sign.
    Key,
    /// The file is not a fundledger ledger, or its schema is unknown.
    NotALedger,
    /// SQLite reported an error.
    Store,
    /// An entry could not be decoded from its bytes.
    Format,
    /// An accounting or policy rule refused the entry; nothing was written.
    Rule,
    /// An idempotency key was reused with different content.
    Conflict,
    /// Verification found a problem in the ledger or in a proof (exit code 1).
    Verification,
}

/// The library's error: a kind, an optional entry sequence number, a message
/// and a hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    seq: Option<u64>,
    message: String,
    hint: Option<String>,
}

/// Shorthand used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            seq: None,
            message: message.into(),
            hint: None,
        }
    }

    pub fn input(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Input, message)
    }

    pub fn rule(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Rule, message)
    }

    pub fn format(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Format, message)
    }

    pub fn key(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Key, message)
    }

    pub fn io(context: impl fmt::Display, err: std::io::Error) -> Error {
        Error::new(ErrorKind::Io, format!("{context}: {err}"))
    }

    /// Attach a hint that tells the user what to do.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Error {
        self.hint = Some(hint.into());
        self
    }

    /// The same error (kind, entry and hint) with its message rewritten,
    /// to say where it happened.
    pub fn map_message(mut self, f: impl FnOnce(&str) -> String) -> Error {
        self.message = f(&self.message);
        self
    }

    /// Attach the sequence number of the entry the error is about.
    pub fn at_seq(mut self, seq: u64) -> Error {
        self.seq = Some(seq);
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn seq(&self) -> Option<u64> {
        self.seq
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// 1 when verification found a problem, 2 when the command could not run
    /// or refused its input.
    pub fn exit_code(&self) -> i32 {
        match self.kind {
            ErrorKind::Verification => 1,
            _ => 2,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(seq) = self.seq {
            write!(f, "entry {seq}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Error {
        Error::new(ErrorKind::Store, format!("database error: {err}"))
    }
}
