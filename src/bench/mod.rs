//! TEMPORARY placeholder so the tree builds while `zcp bench` is written (replace me).
use crate::cli::BenchArgs;
use crate::error::ExitCode;
pub fn run(_args: BenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("zcp bench is not built yet")
}
