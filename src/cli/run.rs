//! `cairn run` (not implemented yet).

use super::Ctx;

/// Not implemented yet.
#[derive(clap::Args)]
pub struct Args {}

pub fn run(_ctx: &Ctx, _a: Args) -> anyhow::Result<i32> {
    anyhow::bail!("cairn run is not implemented yet")
}
