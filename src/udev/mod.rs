//! udev: rules files, the devices they are evaluated on, and the evaluator.

pub mod device;
pub mod eval;
pub mod no_systemd;
pub mod rules;
