//! Readings: the model, the parsers for JSON / NDJSON / CSV and workbooks, the store, and
//! the seam rules read them through ([`source`]).

pub mod excel;
pub mod model;
pub mod parse;
pub mod source;
pub mod store;
pub mod stream;

pub use model::{Batch, BatchPoint, Format, ItemError, Labels, ParseError, SeriesKey};
