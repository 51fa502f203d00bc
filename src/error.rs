//! Errors that name the file and line they come from.

use std::fmt;

/// A problem in an input file, at a line (1-based) where one applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub file: String,
    pub line: Option<usize>,
    pub msg: String,
}

impl InputError {
    pub fn new(file: &str, line: Option<usize>, msg: impl Into<String>) -> Self {
        InputError {
            file: file.to_string(),
            line,
            msg: msg.into(),
        }
    }
    pub fn at(file: &str, line: usize, msg: impl Into<String>) -> Self {
        Self::new(file, Some(line), msg)
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.file, l, self.msg),
            None => write!(f, "{}: {}", self.file, self.msg),
        }
    }
}

impl std::error::Error for InputError {}

/// A non-fatal finding (kmod and udev skip such lines and go on; so do we, and
/// the plan lists them).
pub type Warning = InputError;
