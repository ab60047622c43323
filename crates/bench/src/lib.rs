//! ringtrace benchmark suite (being written).
