//! The bundle's `config.json`: an OCI runtime-spec configuration generated from the image
//! config by the image spec's conversion rules (`conversion.md`):
//!
//! - `process.args` = `Entrypoint` + `Cmd`, `process.env` = `Env` (with a default `PATH`
//!   and the user's `HOME` from `/etc/passwd` only when `Env` has none), `process.cwd` = `WorkingDir` (default `/`), `process.user`
//!   from `User` through the rootfs's `/etc/passwd` and `/etc/group`;
//! - annotations: the manifest's, then `org.opencontainers.image.{os, architecture,
//!   variant, os.version, os.features, author, created, stopSignal, exposedPorts}` from the
//!   config, then `Labels`, which win on a conflict;
//! - the rest is runc's default (`runc spec`): mounts, namespaces, masked and read-only
//!   paths, three capabilities, no new privileges, no terminal;
//! - rootless: runc's `ToRootless`: a user namespace mapping the caller to root, no network
//!   namespace, `/sys` bound read-only, no `gid=`/`uid=` mount options, no cgroup resources.
//!
//! `Volumes` get no mounts (the conversion makes them optional); the caller is told.

use serde_json::{Map, Value, json};

use crate::image::Image;
use crate::user::ExecUser;

/// The `PATH` a process gets when the image sets none (Docker's).
pub(crate) const DEFAULT_PATH: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The runtime-spec version written.
const OCI_VERSION: &str = "1.0.2";

/// The image config's `config` object (Docker's `Env`, `Cmd`, ...).
fn runtime_part(image: &Image) -> &Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    image
        .config
        .get("config")
        .and_then(Value::as_object)
        .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// The config's `User`.
pub(crate) fn image_user(image: &Image) -> String {
    runtime_part(image).get("User").and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// The config's `Volumes`, sorted.
pub(crate) fn volumes(image: &Image) -> Vec<String> {
    let mut v: Vec<String> = runtime_part(image)
        .get("Volumes")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// The annotations of the runtime config (see the module docs for the precedence).
fn annotations(image: &Image) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in image.manifest.annotations.iter().flatten() {
        out.insert(k.clone(), v.clone().into());
    }
    let c = &image.config;
    let s = |k: &str| c.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let prefix = "org.opencontainers.image.";
    for (field, key) in [
        ("os", "os"),
        ("architecture", "architecture"),
        ("variant", "variant"),
        ("os.version", "os.version"),
        ("author", "author"),
        ("created", "created"),
    ] {
        if let Some(v) = s(field) {
            out.insert(format!("{prefix}{key}"), v.into());
        }
    }
    let features = strings(c.get("os.features"));
    if !features.is_empty() {
        out.insert(format!("{prefix}os.features"), features.join(",").into());
    }
    let rc = runtime_part(image);
    if let Some(sig) = rc.get("StopSignal").and_then(Value::as_str).filter(|s| !s.is_empty()) {
        out.insert(format!("{prefix}stopSignal"), sig.into());
    }
    if let Some(ports) = rc.get("ExposedPorts").and_then(Value::as_object).filter(|p| !p.is_empty())
    {
        let mut keys: Vec<&String> = ports.keys().collect();
        keys.sort();
        let keys: Vec<&str> = keys.into_iter().map(String::as_str).collect();
        out.insert(format!("{prefix}exposedPorts"), keys.join(",").into());
    }
    if let Some(labels) = rc.get("Labels").and_then(Value::as_object) {
        for (k, v) in labels {
            if let Some(v) = v.as_str() {
                out.insert(k.clone(), v.into());
            }
        }
    }
    out
}

/// The whole `config.json`. `rootless` is the caller's (euid, egid) when the bundle is
/// rootless.
pub(crate) fn runtime_config(
    image: &Image,
    user: &ExecUser,
    rootless: Option<(u32, u32)>,
) -> Value {
    let rc = runtime_part(image);
    let mut args = strings(rc.get("Entrypoint"));
    args.extend(strings(rc.get("Cmd")));
    let mut env = strings(rc.get("Env"));
    let has = |env: &[String], name: &str| {
        env.iter().any(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == name)
    };
    if !has(&env, "PATH") {
        env.insert(0, DEFAULT_PATH.into());
    }
    // The user's home, as runc, umoci and Docker add it (never over the image's own).
    if let Some(home) = user.home.as_deref().filter(|_| !has(&env, "HOME")) {
        env.push(format!("HOME={home}"));
    }
    let cwd = rc.get("WorkingDir").and_then(Value::as_str).filter(|s| !s.is_empty()).unwrap_or("/");
    let mut process_user = json!({"uid": user.uid, "gid": user.gid});
    if !user.additional_gids.is_empty() {
        process_user["additionalGids"] = json!(user.additional_gids);
    }
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
               "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
    ];
    let mut namespaces: Vec<Value> =
        ["pid", "network", "ipc", "uts", "mount"].iter().map(|t| json!({"type": t})).collect();
    let mut linux = Map::new();
    if let Some((uid, gid)) = rootless {
        namespaces.retain(|n| n["type"] != "network");
        namespaces.push(json!({"type": "user"}));
        linux.insert("uidMappings".into(), json!([{"containerID": 0, "hostID": uid, "size": 1}]));
        linux.insert("gidMappings".into(), json!([{"containerID": 0, "hostID": gid, "size": 1}]));
        mounts.retain(|m| !m["destination"].as_str().unwrap_or_default().starts_with("/sys"));
        for m in &mut mounts {
            if let Some(opts) = m.get_mut("options").and_then(Value::as_array_mut) {
                opts.retain(|o| {
                    let o = o.as_str().unwrap_or_default();
                    !o.starts_with("gid=") && !o.starts_with("uid=")
                });
            }
        }
        mounts.push(json!({"destination": "/sys", "type": "none", "source": "/sys",
                           "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}));
    } else {
        linux.insert("resources".into(), json!({"devices": [{"allow": false, "access": "rwm"}]}));
    }
    linux.insert("namespaces".into(), Value::Array(namespaces));
    linux.insert(
        "maskedPaths".into(),
        json!([
            "/proc/acpi",
            "/proc/asound",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/sys/firmware",
            "/proc/scsi"
        ]),
    );
    linux.insert(
        "readonlyPaths".into(),
        json!(["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]),
    );
    json!({
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": false,
            "user": process_user,
            "args": args,
            "env": env,
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs"},
        "hostname": "ocil",
        "mounts": mounts,
        "annotations": annotations(image),
        "linux": linux
    })
}
