//! Placeholder until the managed Synapse target lands (being written in parallel).
use super::{Registration, Target, TargetError, TargetInfo};
use async_trait::async_trait;
use std::path::PathBuf;
use std::time::Duration;
pub const PINNED_VERSION: &str = "1.163.2";
pub struct SynapseOptions {
    pub version: String,
    pub venv: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    pub spawn_timeout: Duration,
    pub show_progress: bool,
    pub keep_data: bool,
}
pub struct SynapseTarget;
impl SynapseTarget {
    pub async fn start(_o: SynapseOptions) -> Result<SynapseTarget, TargetError> {
        Err(TargetError("not yet".into()))
    }
}
#[async_trait]
impl Target for SynapseTarget {
    fn info(&self) -> TargetInfo { unimplemented!() }
    fn registration(&self) -> Registration { unimplemented!() }
    fn can_restart(&self) -> Result<(), String> { Ok(()) }
    async fn restart(&self) -> Result<(), TargetError> { Ok(()) }
    fn log_tail(&self, _l: usize) -> Option<String> { None }
    async fn shutdown(&self) {}
}
