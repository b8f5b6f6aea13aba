//! Readings: the model, the parsers for JSON / NDJSON / CSV, and the store.

pub mod excel;
pub mod ingest;
pub mod model;
pub mod parse;
pub mod store;

pub use model::{Batch, BatchPoint, Format, ItemError, Labels, ParseError, SeriesKey};
