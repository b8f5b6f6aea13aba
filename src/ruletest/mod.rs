//! Rule tests: test files (RON) beside the rules, the series notation, the
//! runner that replays them through the daemon's evaluation path, and the
//! diff printed on failure.

pub mod backtest;
pub mod diff;
pub mod file;
pub mod locate;
pub mod runner;
pub mod series;
