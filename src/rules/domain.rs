//! Domain arithmetic rules call: AQI, the composite index, water class, pace.
//! (Being written.)
