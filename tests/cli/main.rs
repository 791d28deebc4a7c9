//! Integration tests: drive the real `cairn` binary on real files in temporary folders.

mod common;
mod core_cmds;
mod safety;
mod diff_query;
mod run_cmd;
