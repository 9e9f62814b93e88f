//! The token signing key (`signing.key`): 32 random bytes made on first
//! start, readable by the owner only, written whole or not at all.

use std::io::Write;
use std::path::Path;

use crate::auth::random_bytes;
use crate::error::Error;

/// The key, and whether it was made now (no file was there).
pub fn signing_key(path: &Path) -> Result<([u8; 32], bool), Error> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    match std::fs::read(path) {
        Ok(bytes) => {
            return <[u8; 32]>::try_from(bytes.as_slice())
                .map(|key| (key, false))
                .map_err(|_| Error::SigningKey {
                    path: path.to_path_buf(),
                    found: bytes.len(),
                });
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(path)(e)),
        Err(_) => {}
    }
    let key = random_bytes::<32>();
    // Via a file beside it, synced, then renamed over: a crash leaves
    // either no key or the whole key, never a short one.
    let temp = path.with_extension("key.new");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&temp).map_err(io(&temp))?;
    #[cfg(unix)]
    {
        // A leftover temp file keeps its mode through `open`: set it.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io(&temp))?;
    }
    file.write_all(&key).map_err(io(&temp))?;
    file.sync_all().map_err(io(&temp))?;
    drop(file);
    std::fs::rename(&temp, path).map_err(io(path))?;
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        // The rename itself is durable only once the directory is.
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
    }
    Ok((key, true))
}
