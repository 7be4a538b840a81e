//! Registry credentials on this machine: which files docker and podman keep them in, in
//! what order they are asked, and writing them (`ocil login`, `ocil logout`). The format,
//! the lookup within a file and the credential helpers are `ocil_registry::credentials`'.
//!
//! Lookup order: `--creds USER:PASS`; then the first of these files that has credentials for
//! the registry: `--authfile`, `$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`,
//! `~/.config/containers/auth.json`, `$DOCKER_CONFIG/config.json` (or
//! `~/.docker/config.json`). `ocil login` writes the first of the first four (podman's and
//! skopeo's file; docker's only when `--authfile` names it).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ocil_registry::Creds;
use ocil_registry::credentials::{self, AuthFile, Found};

/// An environment variable's value, unless empty.
fn var(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

fn home() -> Option<PathBuf> {
    var("HOME")
}

/// docker's file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
fn docker_config() -> Option<PathBuf> {
    match var("DOCKER_CONFIG") {
        Some(dir) => Some(dir.join("config.json")),
        None => home().map(|h| h.join(".docker/config.json")),
    }
}

/// The files podman and skopeo write, in their order.
fn containers_files(authfile: Option<&Path>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = authfile.map(Path::to_path_buf).into_iter().collect();
    out.extend(var("REGISTRY_AUTH_FILE"));
    out.extend(var("XDG_RUNTIME_DIR").map(|d| d.join("containers/auth.json")));
    out.extend(home().map(|h| h.join(".config/containers/auth.json")));
    out
}

/// Every file credentials are looked up in, in order (see the module docs).
pub(crate) fn lookup_files(authfile: Option<&Path>) -> Vec<PathBuf> {
    let mut out = containers_files(authfile);
    out.extend(docker_config());
    out.dedup();
    out
}

/// The file `ocil login` writes.
pub(crate) fn login_file(authfile: Option<&Path>) -> Result<PathBuf> {
    containers_files(authfile).into_iter().next().context(
        "no auth file to write: give --authfile, or set REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR or HOME",
    )
}

/// A file's content: `None` when it does not exist.
fn read(path: &Path) -> Result<Option<AuthFile>> {
    match fs_err::read(path) {
        Ok(bytes) => Ok(Some(AuthFile::parse(&bytes, &path.display().to_string())?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The credentials for `repository` of `domain` (see the module docs); `None`: anonymous.
pub(crate) fn lookup(
    creds: Option<&str>,
    authfile: Option<&Path>,
    domain: &str,
    repository: &str,
) -> Result<Option<Creds>> {
    if let Some(c) = creds {
        return Ok(Some(Creds::parse(c)?));
    }
    for path in lookup_files(authfile) {
        let Some(file) = read(&path)? else { continue };
        let shown = path.display().to_string();
        // A helper that has nothing (or is not installed) lets `auths` answer.
        if let Some(Found::Helper(name)) = file.lookup(domain, repository, &shown)?
            && let Some(c) = credentials::helper_get(&name, domain)?
        {
            return Ok(Some(c));
        }
        if let Some(Found::Creds(c)) = file.lookup_auths(domain, repository, &shown)? {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// Write an auth file whole: a temp file beside it (mode 0600; its directory made 0700),
/// fsynced, renamed over it.
fn write(path: &Path, file: &AuthFile) -> Result<()> {
    use fs_err::os::unix::fs::OpenOptionsExt as _;
    use std::os::unix::fs::PermissionsExt as _;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !dir.is_dir() {
        fs_err::create_dir_all(dir)?;
        fs_err::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let name = path.file_name().context("an auth file needs a file name")?;
    let temp = dir.join(format!(".{}.ocil-tmp-{}", name.to_string_lossy(), std::process::id()));
    let result = (|| -> Result<()> {
        let mut f =
            fs_err::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp)?;
        f.write_all(&file.to_bytes())?;
        f.sync_all()?;
        fs_err::rename(&temp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs_err::remove_file(&temp);
    }
    result
}

/// Keep `creds` for `key` (`HOST` or `HOST/NAMESPACE`): with the credential helper the
/// login file names for the host, else in its `auths`. Where they went.
pub(crate) fn store(
    authfile: Option<&Path>,
    domain: &str,
    key: &str,
    creds: &Creds,
) -> Result<String> {
    let path = login_file(authfile)?;
    let mut file = read(&path)?.unwrap_or_default();
    if key == domain
        && let Some(helper) = file.helper(domain)
    {
        credentials::helper_store(&helper, domain, creds)?;
        return Ok(format!("docker-credential-{helper}"));
    }
    file.set(key, creds);
    write(&path, &file).with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(path.display().to_string())
}

/// Forget `key` in every file credentials are looked up in (and with their helpers):
/// where it was found.
pub(crate) fn forget(authfile: Option<&Path>, domain: &str, key: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for path in lookup_files(authfile) {
        let Some(mut file) = read(&path)? else { continue };
        if key == domain
            && let Some(helper) = file.helper(domain)
            && credentials::helper_erase(&helper, domain)?
        {
            out.push(format!("docker-credential-{helper}"));
        }
        if file.remove(key) {
            write(&path, &file).with_context(|| format!("cannot write `{}`", path.display()))?;
            out.push(path.display().to_string());
        }
    }
    out.dedup();
    Ok(out)
}
