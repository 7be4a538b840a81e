//! The command: the bound address first on stdout, notes and the access log on stderr
//! (text or JSON), a graceful stop on SIGTERM, and the arguments it refuses.

use crate::support::*;

#[test]
fn prints_its_address_logs_requests_and_stops_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("app");
    build(&dir, 1, 1000, 1);
    let mut s = serve(&dir, &[]);
    assert!(s.addr.starts_with("127.0.0.1:") && !s.addr.ends_with(":0"), "{}", s.addr);
    let r = get(&s.addr, "/v2/").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("docker-distribution-api-version"), Some("registry/2.0"));
    let r = get(&s.addr, "/v2/app/tags/list").unwrap();
    assert_eq!(String::from_utf8_lossy(&r.body), r#"{"name":"app","tags":["base","i0"]}"#);
    let status = s.stop();
    assert!(status.success(), "{status:?}");
    let err = s.stderr();
    assert!(err.contains("note: serving"), "{err}");
    assert!(err.contains("\"GET /v2/app/tags/list HTTP/1.1\" 200"), "{err}");
    assert!(err.contains("note: stopped"), "{err}");
    assert!(!err.contains("warning"), "loopback without TLS is fine: {err}");
}

#[test]
fn json_access_log_and_a_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("Not_A_Repo_Name");
    build(&dir, 1, 100, 2);
    // The directory's name is no repository name: --name is needed.
    let out = run(
        env!("CARGO_BIN_EXE_ocil"),
        ["serve".as_ref(), dir.as_os_str(), "--addr".as_ref(), "127.0.0.1:0".as_ref()],
    );
    assert!(!out.ok);
    assert!(out.stderr.contains("--name"), "{}", out.stderr);
    let mut s = serve(&dir, &["--name", "team/app", "--log-format", "json"]);
    let r = get(&s.addr, "/v2/team/app/manifests/i0").unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(digest(&r.body), tag_digest(&dir, "i0").unwrap());
    assert!(s.stop().success());
    let line = s
        .stderr()
        .lines()
        .find(|l| l.starts_with('{'))
        .map(str::to_owned)
        .expect("a JSON log line");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["method"], "GET");
    assert_eq!(v["target"], "/v2/team/app/manifests/i0");
    assert_eq!(v["status"], 200);
    assert!(v["time"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn refused_arguments() {
    let tmp = tempfile::tempdir().unwrap();
    let ocil = env!("CARGO_BIN_EXE_ocil");
    let missing = tmp.path().join("missing");
    let cases: Vec<Vec<String>> = vec![
        vec!["serve".into(), missing.display().to_string()],
        vec!["serve".into(), tmp.path().display().to_string(), "--tls-cert".into(), "x.pem".into()],
        vec!["serve".into(), tmp.path().display().to_string(), "--addr".into(), "nonsense".into()],
        vec!["serve".into(), tmp.path().display().to_string(), "--name".into(), "x".into()],
        vec![
            "serve".into(),
            tmp.path().display().to_string(),
            "--upload-expiry".into(),
            "soon".into(),
        ],
    ];
    for args in cases {
        let out = std::process::Command::new(ocil).args(&args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{args:?}: no address printed");
    }
}
