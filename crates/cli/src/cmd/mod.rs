//! One module per subcommand: its clap arguments and its `run` function.

pub(crate) mod audit;
pub(crate) mod bank;
pub(crate) mod case;
pub(crate) mod classify;
pub(crate) mod dev;
pub(crate) mod eval;
pub(crate) mod hash;
pub(crate) mod match_;
pub(crate) mod policy;
pub(crate) mod report;
pub(crate) mod scan;
pub(crate) mod serve;
pub(crate) mod vault;
