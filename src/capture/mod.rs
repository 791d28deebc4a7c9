//! Capturing what a run was made of: git state, params files and metrics files.

pub mod git;
pub mod metrics;
pub mod params;
