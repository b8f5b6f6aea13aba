//! Readings: the model, the parsers for JSON / NDJSON / CSV, the store, and
//! the seam rules read them through ([`source`]).

pub mod ingest;
pub mod model;
pub mod parse;
pub mod source;
pub mod store;

pub use model::{Batch, BatchPoint, Format, ItemError, Labels, ParseError, SeriesKey};
