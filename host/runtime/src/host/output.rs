//! `output`: appending to the files granted in `grants.append-files`, and no other
//! file-system access.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::sync::Arc;

use super::bindings::exporter::wasmbgp::plugin::output;
use crate::grants::CheckedGrants;
use crate::supervisor::Shared;

/// The most bytes one `append` call may write.
pub const MAX_APPEND: usize = 16 << 20;

/// What `output` may touch: the granted files.
pub(crate) struct OutputCtx {
    pub plugin: Arc<str>,
    pub shared: Arc<Shared>,
    pub grants: Arc<CheckedGrants>,
}

impl output::Host for OutputCtx {
    fn append(&mut self, path: String, data: Vec<u8>) -> Result<(), String> {
        let Some(file) = self.grants.append_files.iter().find(|f| f.name == path) else {
            let why = format!("append to {path:?}: not in grants.append-files");
            self.shared.denied(&why);
            return Err(why);
        };
        if data.len() > MAX_APPEND {
            return Err(format!(
                "append to {path:?}: {} bytes in one call (at most {MAX_APPEND})",
                data.len()
            ));
        }
        // A short blocking write to a local file, like a log line: no runtime hop.
        let result = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .open(&file.path)
            .and_then(|mut f| f.write_all(&data));
        result.map_err(|e| {
            tracing::warn!(plugin = %self.plugin, path = %file.path.display(), error = %e, "append failed");
            format!("append to {path:?}: {e}")
        })
    }
}
