//! Credentials from the files docker and podman keep: `ocil login` and `ocil logout`
//! against `docker-registry` with an htpasswd file; docker's `config.json` (another spelling
//! of the host, `credHelpers`, `credsStore` with a fake `docker-credential-*` script on
//! PATH); podman's namespaced keys and the lookup order of the files; an `identitytoken`
//! exchanged at the scripted registry's token server. HOME, XDG_RUNTIME_DIR, DOCKER_CONFIG
//! and REGISTRY_AUTH_FILE point into the test's temp dir, never at the real ones.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::fake::{Fake, Image, Reply};
use crate::peers::{registry_tool, require_tool};
use crate::support::{Out, Registry, ocil_ok, tags};

const USER: &str = "bob";
const PASSWORD: &str = "pa55-word";
/// base64 of `bob:pa55-word` and `bob:wrong` (computed outside ocil).
const GOOD: &str = "Ym9iOnBhNTUtd29yZA==";
const BAD: &str = "Ym9iOndyb25n";

/// A home of the test's own: HOME, XDG_RUNTIME_DIR and DOCKER_CONFIG inside it, a `bin`
/// first on PATH for credential helpers.
struct Home {
    dir: tempfile::TempDir,
    env: Vec<(String, Option<String>)>,
}

impl Home {
    fn new() -> Home {
        let dir = tempfile::tempdir().unwrap();
        let p = |s: &str| Some(dir.path().join(s).display().to_string());
        fs_err::create_dir_all(dir.path().join("bin")).unwrap();
        let path =
            format!("{}:{}", dir.path().join("bin").display(), std::env::var("PATH").unwrap());
        let env = vec![
            ("HOME".to_owned(), p("home")),
            ("XDG_RUNTIME_DIR".to_owned(), p("xdg")),
            ("DOCKER_CONFIG".to_owned(), p("docker")),
            ("REGISTRY_AUTH_FILE".to_owned(), None),
            ("PATH".to_owned(), Some(path)),
        ];
        Home { dir, env }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn set(&mut self, key: &str, value: Option<String>) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value));
    }

    /// Write a file under the home.
    fn write(&self, rel: &str, content: &str) -> PathBuf {
        let path = self.path(rel);
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(&path, content).unwrap();
        path
    }

    /// `docker-credential-NAME` on PATH: logs its verb and stdin to `helper.log`; `get`
    /// answers `answer` (exit 1 when `None`, as helpers do when they have nothing).
    fn helper(&self, name: &str, answer: Option<&str>) {
        let log = self.path("helper.log");
        let get = match answer {
            Some(a) => format!("printf '%s' '{a}'"),
            None => "echo 'credentials not found in native keychain'; exit 1".to_owned(),
        };
        let script = format!(
            "#!/bin/sh\nin=$(cat)\necho \"$1 $in\" >> '{}'\ncase \"$1\" in\n  get) {get} ;;\n  *) exit 0 ;;\nesac\n",
            log.display()
        );
        let path = self.write(&format!("bin/docker-credential-{name}"), &script);
        let out = crate::support::run("chmod", ["755".as_ref(), path.as_os_str()]);
        assert!(out.ok(), "{}", out.stderr);
    }

    fn helper_log(&self) -> String {
        fs_err::read_to_string(self.path("helper.log")).unwrap_or_default()
    }

    /// Run ocil in this home, with `stdin`.
    fn ocil(&self, args: &[&str], stdin: &str) -> Out {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ocil"));
        cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        for (k, v) in &self.env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let mut child = cmd.spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        Out {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// A registry with Basic auth (bob), holding `app:v1` and `team/app:v1` (a small image).
fn registry_with_image() -> (Registry, tempfile::TempDir, String) {
    let reg = Registry::start(Some((USER, PASSWORD)));
    let src = tempfile::tempdir().unwrap();
    ocil_ok(["init".as_ref(), src.path().as_os_str()]);
    ocil_ok(["new".to_owned(), format!("{}:v1", src.path().display())]);
    let digest = tags(src.path())[0].1.clone();
    for repo in ["app", "team/app", "other/app"] {
        ocil_ok([
            "push".to_owned(),
            format!("{}:v1", src.path().display()),
            format!("{}/{repo}:v1", reg.host()),
            "--creds".into(),
            format!("{USER}:{PASSWORD}"),
        ]);
    }
    (reg, src, digest)
}

/// `ocil ls docker://HOST/REPO` in `home`.
fn ls(home: &Home, reg: &Registry, repo: &str, extra: &[&str]) -> Out {
    let target = format!("docker://{}/{repo}", reg.host());
    let mut args = vec!["ls", target.as_str()];
    args.extend(extra);
    home.ocil(&args, "")
}

fn auth_json(entries: &[(&str, &str)]) -> String {
    let auths: serde_json::Map<String, serde_json::Value> =
        entries.iter().map(|(k, v)| ((*k).to_owned(), serde_json::json!({ "auth": v }))).collect();
    serde_json::json!({ "auths": auths }).to_string()
}

#[test]
fn login_push_logout_needs_registry_needs_htpasswd() {
    if !(registry_tool() && require_tool("htpasswd")) {
        return;
    }
    let (reg, src, _) = registry_with_image();
    let home = Home::new();
    let host = reg.host();
    let file = home.path("xdg/containers/auth.json");
    // A wrong password: refused, nothing kept.
    let out = home.ocil(&["login", &host, "-u", USER, "--password-stdin"], "wrong\n");
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("refused the credentials of user `bob`"), "{}", out.stderr);
    assert!(!file.exists());
    let out = home.ocil(&["login", &host, "-u", USER, "--password-stdin"], "pa55-word\n");
    assert!(out.ok(), "{}", out.stderr);
    assert!(!out.stdout.contains(PASSWORD) && !out.stderr.contains(PASSWORD));
    let kept: serde_json::Value = serde_json::from_slice(&fs_err::read(&file).unwrap()).unwrap();
    assert_eq!(kept["auths"][host.as_str()]["auth"], GOOD);
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(fs_err::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    // Used by push and ls without --creds.
    let pushed = home.ocil(
        &["push", &format!("{}:v1", src.path().display()), &format!("{host}/after-login:v1")],
        "",
    );
    assert!(pushed.ok(), "{}", pushed.stderr);
    assert_eq!(ls(&home, &reg, "after-login", &[]).stdout, "v1\n");
    // Logged out: refused again; a second logout finds nothing (exit 1).
    let out = home.ocil(&["logout", &host], "");
    assert!(out.ok(), "{}", out.stderr);
    let out = ls(&home, &reg, "app", &[]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("needs credentials"), "{}", out.stderr);
    assert_eq!(home.ocil(&["logout", &host], "").code, Some(1));
}

#[test]
fn docker_config_and_credential_helpers_needs_registry_needs_htpasswd() {
    if !(registry_tool() && require_tool("htpasswd")) {
        return;
    }
    let (reg, _src, _) = registry_with_image();
    let host = reg.host();
    let mut home = Home::new();
    // docker's file, the host spelled as a URL.
    home.write("docker/config.json", &auth_json(&[(&format!("http://{host}/v2/"), GOOD)]));
    assert_eq!(ls(&home, &reg, "app", &[]).stdout, "v1\n");
    // ~/.docker/config.json when DOCKER_CONFIG is not set.
    home.set("DOCKER_CONFIG", None);
    assert_eq!(ls(&home, &reg, "app", &[]).code, Some(2), "nothing in ~/.docker yet");
    home.write("home/.docker/config.json", &auth_json(&[(&host, GOOD)]));
    assert_eq!(ls(&home, &reg, "app", &[]).stdout, "v1\n");

    // credHelpers: the helper is asked about the host.
    let answer = format!(r#"{{"ServerURL":"{host}","Username":"{USER}","Secret":"{PASSWORD}"}}"#);
    home.helper("ocilgood", Some(&answer));
    home.write(
        "home/.docker/config.json",
        &format!(r#"{{"credHelpers":{{"{host}":"ocilgood"}}}}"#),
    );
    let out = ls(&home, &reg, "app", &[]);
    assert_eq!(out.stdout, "v1\n", "{}", out.stderr);
    assert!(home.helper_log().contains(&format!("get {host}")), "{}", home.helper_log());
    // credsStore: the same helper for every host.
    home.write("home/.docker/config.json", r#"{"credsStore":"ocilgood"}"#);
    assert_eq!(ls(&home, &reg, "app", &[]).stdout, "v1\n");
    // A helper with nothing: the file's auths answer.
    home.helper("ocilnone", None);
    home.write(
        "home/.docker/config.json",
        &format!(r#"{{"credsStore":"ocilnone","auths":{{"{host}":{{"auth":"{GOOD}"}}}}}}"#),
    );
    assert_eq!(ls(&home, &reg, "app", &[]).stdout, "v1\n");
    assert!(home.helper_log().contains("get"), "the helper was asked first");
}

#[test]
fn namespaced_keys_and_the_order_of_files_needs_registry_needs_htpasswd() {
    if !(registry_tool() && require_tool("htpasswd")) {
        return;
    }
    let (reg, _src, _) = registry_with_image();
    let host = reg.host();
    let mut home = Home::new();
    // podman's longest HOST/NAMESPACE key wins over HOST.
    home.write(
        "xdg/containers/auth.json",
        &auth_json(&[(&host, BAD), (&format!("{host}/team"), GOOD)]),
    );
    assert_eq!(ls(&home, &reg, "team/app", &[]).stdout, "v1\n");
    let out = ls(&home, &reg, "other/app", &[]);
    assert!(out.stderr.contains("refused the credentials"), "{}", out.stderr);
    // $XDG_RUNTIME_DIR's file before ~/.config's, before docker's.
    home.write("xdg/containers/auth.json", &auth_json(&[(&host, BAD)]));
    home.write("home/.config/containers/auth.json", &auth_json(&[(&host, GOOD)]));
    home.write("docker/config.json", &auth_json(&[(&host, GOOD)]));
    assert_eq!(ls(&home, &reg, "app", &[]).code, Some(2));
    fs_err::remove_file(home.path("xdg/containers/auth.json")).unwrap();
    assert_eq!(ls(&home, &reg, "app", &[]).stdout, "v1\n");
    // $REGISTRY_AUTH_FILE before them; --authfile before it; --creds before everything.
    let bad = home.write("registry-auth.json", &auth_json(&[(&host, BAD)]));
    home.set("REGISTRY_AUTH_FILE", Some(bad.display().to_string()));
    assert_eq!(ls(&home, &reg, "app", &[]).code, Some(2));
    let good = home.write("given.json", &auth_json(&[(&host, GOOD)]));
    let given = good.display().to_string();
    assert_eq!(ls(&home, &reg, "app", &["--authfile", &given]).stdout, "v1\n");
    let creds = format!("{USER}:{PASSWORD}");
    assert_eq!(ls(&home, &reg, "app", &["--creds", &creds]).stdout, "v1\n");
    // Login writes $REGISTRY_AUTH_FILE (keeping its other members), logout empties it.
    home.write("registry-auth.json", r#"{"auths":{},"other":{"kept":true}}"#);
    let out = home.ocil(&["login", &host, "-u", USER, "--password-stdin"], PASSWORD);
    assert!(out.ok(), "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_slice(&fs_err::read(&bad).unwrap()).unwrap();
    assert_eq!(
        (v["auths"][host.as_str()]["auth"].as_str(), v["other"]["kept"].as_bool()),
        (Some(GOOD), Some(true))
    );
    assert!(home.ocil(&["logout", &host], "").ok());
    let v: serde_json::Value = serde_json::from_slice(&fs_err::read(&bad).unwrap()).unwrap();
    assert!(v["auths"].get(host.as_str()).is_none(), "{v}");
}

#[test]
fn an_identity_token_is_exchanged_for_an_access_token() {
    let img = Image::new(1024);
    let want = img.manifest_digest.clone();
    let port = std::sync::Arc::new(std::sync::OnceLock::<u16>::new());
    let p = port.clone();
    let fake = Fake::start(move |r| {
        let realm = format!("http://127.0.0.1:{}/token", p.get().unwrap());
        if r.path == "/token" {
            let body = String::from_utf8_lossy(&r.body);
            if r.method == "POST"
                && body.contains("grant_type=refresh_token")
                && body.contains("refresh_token=refresh-me")
                && body.contains("service=fake")
            {
                return Reply::new(200, r#"{"access_token":"access-ok","expires_in":300}"#);
            }
            return Reply::new(401, "{}");
        }
        if r.header("authorization") != Some("Bearer access-ok") {
            return Reply::new(401, r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#).header(
                "WWW-Authenticate",
                format!(r#"Bearer realm="{realm}",service="fake",scope="repository:t:pull""#),
            );
        }
        img.serve(r)
    });
    port.set(fake.host().rsplit(':').next().unwrap().parse().unwrap()).unwrap();
    let home = Home::new();
    let token =
        format!(r#"{{"auths":{{"{}":{{"auth":"","identitytoken":"refresh-me"}}}}}}"#, fake.host());
    home.write("xdg/containers/auth.json", &token);
    let dst = home.path("dst");
    let out =
        home.ocil(&["pull", &format!("{}/t:v1", fake.host()), &dst.display().to_string()], "");
    assert!(out.ok(), "{}", out.stderr);
    assert_eq!(tags(&dst), vec![("v1".to_owned(), want)]);
    assert!(!out.stderr.contains("refresh-me") && !out.stdout.contains("refresh-me"));
    let posted =
        fake.requests().iter().filter(|r| r.path == "/token" && r.method == "POST").count();
    assert!(posted >= 1);
}
