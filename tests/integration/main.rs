//! Integration tests: one target, real inputs (Debian kernel trees and
//! rdma-core, downloaded and cached by tests/fetch-inputs.sh).

mod bad_input;
mod cli_output;
mod coexistence;
mod common;
mod corpus;
mod hooks;
mod hostonly;
mod images;
mod install_layout;
mod kmod_diff;
mod manifest;
mod module_builds;
mod netroot;
mod rdma_core;
mod reliability;
mod segments;
