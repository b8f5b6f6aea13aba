//! Rule tests: test files (RON) beside the rules, the series notation, the
//! runner that replays them through the daemon's evaluation path, and the
//! diff printed on failure; the replay of every rule over a period as the
//! daemon would have run it ([`snapshot`], a status source without the daemon).

pub mod backtest;
pub mod diff;
pub mod file;
pub mod locate;
pub mod runner;
pub mod series;
pub mod snapshot;
