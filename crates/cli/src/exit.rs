//! Exit codes, shared by every subcommand, in the tradition of grep:
//! 0 when nothing was found, 1 when something was found, 2 on error.

use std::process::ExitCode;

/// Success; for matching commands, nothing matched.
pub(crate) const OK: u8 = 0;
/// A matching command found something (a hash match, a flagged text).
pub(crate) const FOUND: u8 = 1;
/// Something failed: bad input, an unreadable file, invalid config. For
/// commands that go on after a per-item error, any item error gives this.
pub(crate) const ERROR: u8 = 2;

/// Turns a subcommand's result into the process exit code, printing the whole
/// error chain on failure. A closed pipe (`childsafe hash . | head`) is success.
pub(crate) fn report(res: anyhow::Result<u8>) -> ExitCode {
    match res {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::from(OK);
            }
            eprintln!("childsafe: {err:#}");
            ExitCode::from(ERROR)
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
