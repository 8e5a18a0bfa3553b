//! Text detection of child sexual exploitation (DESIGN.md, "Categories").
#![deny(missing_docs)]

mod error;
pub mod lexicon;
pub mod normalize;

pub use crate::{
    error::Error,
    lexicon::{Lexicon, LexiconBuilder},
    normalize::{Normalized, normalize},
};
