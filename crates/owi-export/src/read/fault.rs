//! Parser and prolog errors as the crate's own, with file and offset.

use super::*;

pub(crate) fn prolog_error(path: &Path, e: PrologError) -> Error {
    let path = path.to_path_buf();
    match e {
        PrologError::Io(message) => Error::Malformed {
            path,
            offset: 0,
            message,
        },
        PrologError::Entity { offset } => Error::EntityDeclared { path, offset },
        PrologError::Unterminated { what, offset } => Error::Malformed {
            path,
            offset,
            message: format!("the {what} never ends"),
        },
        PrologError::NotHealthData(prolog::Sniff::OtherXml(root)) => Error::NotHealthExport {
            path,
            reason: format!("its root element is <{root}>, not <HealthData>"),
        },
        PrologError::NotHealthData(_) => Error::NotHealthExport {
            path,
            reason: "it does not start like an XML document".into(),
        },
        PrologError::TooLong => Error::NotHealthExport {
            path,
            reason: format!("no root element in its first {} bytes", prolog::MAX_PROLOG),
        },
    }
}

/// A parser error as ours: running out of input inside markup is a
/// cut-short file (at `offset`), anything else is malformed (at `error_at`).
pub(crate) fn xml_error(
    path: &Path,
    e: quick_xml::Error,
    offset: u64,
    error_at: u64,
    expected: u64,
    inside: &str,
) -> Error {
    use quick_xml::errors::SyntaxError;
    let truncated = || Error::Truncated {
        path: path.to_path_buf(),
        offset,
        expected,
        inside: inside.to_string(),
    };
    match e {
        quick_xml::Error::Syntax(
            SyntaxError::UnclosedTag
            | SyntaxError::UnclosedComment
            | SyntaxError::UnclosedCData
            | SyntaxError::UnclosedPI
            | SyntaxError::UnclosedXmlDecl
            | SyntaxError::UnclosedDoctype
            | SyntaxError::UnclosedSingleQuotedAttributeValue
            | SyntaxError::UnclosedDoubleQuotedAttributeValue,
        ) => truncated(),
        quick_xml::Error::Io(io) if io.kind() == io::ErrorKind::UnexpectedEof => truncated(),
        quick_xml::Error::Io(io) => Error::Malformed {
            path: path.to_path_buf(),
            offset,
            message: io.to_string(),
        },
        other => Error::Malformed {
            path: path.to_path_buf(),
            offset: error_at,
            message: format!("{other} (inside <{inside}>)"),
        },
    }
}

pub(super) fn self_text_error(path: &Path, offset: u64, element: &str, err: TextError) -> Error {
    Error::Malformed {
        path: path.to_path_buf(),
        offset,
        message: format!("in <{element}>: {err}"),
    }
}

pub(super) fn number_skip_reason(err: NumberError) -> SkipReason {
    match err {
        NumberError::Empty => SkipReason::EmptyValue,
        NumberError::NotFinite => SkipReason::NanValue,
        NumberError::Invalid => SkipReason::InvalidValue,
    }
}
