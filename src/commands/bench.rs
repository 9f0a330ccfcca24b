use std::process::ExitCode; use super::Context;
#[derive(clap::Args)] pub struct Args {}
pub fn run(_ctx: &Context, _a: Args) -> anyhow::Result<ExitCode> { anyhow::bail!("not yet") }
