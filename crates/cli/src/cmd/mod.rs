//! One module per subcommand: its clap arguments and its `run` function.

pub(crate) mod audit;
pub(crate) mod case;
pub(crate) mod classify;
pub(crate) mod eval;
pub(crate) mod hash;
pub(crate) mod policy;
pub(crate) mod scan;
pub(crate) mod vault;
