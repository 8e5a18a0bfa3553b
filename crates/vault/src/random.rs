//! Randomness for keys, nonces, ids and temporary names, from the operating
//! system (getrandom), with its failure turned into a vault error.

use crate::error::{Error, Result};

pub(crate) fn fill(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| Error::Random(e.to_string()))
}
