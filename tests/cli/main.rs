//! Integration tests: drive the real `cairn` binary on real files in temporary folders.

mod common;
mod core_cmds;
mod crash;
mod diff_query;
mod docs;
mod faults;
mod io_faults;
mod registry;
mod remotes;
mod run_cmd;
mod safety;
