//! The readings store. (Being written.)
