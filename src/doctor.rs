//! TEMPORARY placeholder so the tree builds while `zcp doctor` is written (replace me).
use crate::cli::DoctorArgs;
use crate::error::ExitCode;
pub fn run(_args: DoctorArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("zcp doctor is not built yet")
}
