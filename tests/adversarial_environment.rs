//! Class 3 of the adversarial suite: the environment never steers the client.
//!
//! Under sudo the module runs with the invoking user's environment, so every variable a TLS
//! or HTTP stack might read is attacker-controlled: proxies (`HTTPS_PROXY`, `https_proxy`,
//! `ALL_PROXY`, `NO_PROXY`...), trust anchors (`SSL_CERT_FILE`, `SSL_CERT_DIR`...), key logs
//! (`SSLKEYLOGFILE`) and log switches (`RUST_LOG`). Each check authenticates in a child
//! process (this test binary re-run) whose environment holds them; the sandbox stays in the
//! parent. Proxies come only from `[api] proxy`, trust anchors only from `ca_file` and the
//! fixed system bundle. Every check runs for the Authy and the Verify backend.

#![allow(clippy::disallowed_methods)]

mod adversarial_support;
mod common;

use adversarial_support::{Tripwire, child_result, child_role, output_text, print_child_result, run_child};
use common::*;
use pam_harness::{PAM_AUTH_ERR, PAM_AUTHINFO_UNAVAIL, PAM_SUCCESS, Reply};

const CHILD_TEST: &str = "child_authenticates_as_told_by_its_parent";

/// The child side: authenticates once with the stack, user and answer its parent names, and
/// prints the PAM code. Does nothing (and passes) when run as an ordinary test.
#[test]
fn child_authenticates_as_told_by_its_parent() {
    if child_role().as_deref() != Some("authenticate") {
        return;
    }
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} not set by the parent"));
    let confdir = std::path::PathBuf::from(var("ADV_CONFDIR"));
    let answer = var("ADV_ANSWER");
    let items = pam_harness::Items { rhost: Some("192.0.2.10".into()), tty: Some("ssh".into()), ruser: None };
    let result = pam_harness::authenticate(Some(&confdir), "svc", &var("ADV_USER"), &items, &mut |m| {
        if m.style.is_prompt() { Reply::Text(answer.clone()) } else { Reply::text("") }
    })
    .expect("pam_start");
    print_child_result(result.code);
    print!("{}", result.text());
}

/// Runs the child with `env` and returns its PAM code and whole output.
fn authenticate_in_child(dir: &TestDir, answer: &str, env: &[(&str, String)]) -> (i32, String) {
    let mut all = vec![
        ("ADV_CONFDIR", dir.confdir().display().to_string()),
        ("ADV_USER", current_user()),
        ("ADV_ANSWER", answer.to_owned()),
    ];
    all.extend(env.iter().cloned());
    let output = run_child(CHILD_TEST, "authenticate", &all);
    let text = output_text(&output);
    (child_result(&text), text)
}

fn proxy_variables(url: &str) -> Vec<(&'static str, String)> {
    ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
        .into_iter()
        .map(|name| (name, url.to_owned()))
        .collect()
}

/// The backends every check runs for: each has its own client over the shared transport.
#[derive(Debug, Clone, Copy)]
enum Api {
    Authy,
    Verify,
}

const APIS: [Api; 2] = [Api::Authy, Api::Verify];

/// A new sandbox and a stack `svc` whose config maps the current user on `api`, with
/// `api_extra` lines added to `[api]` and `extra` tables after it; returns the code to type
/// and the secret of the config (API key or API key secret).
fn login_dir(api: Api, api_extra: &str, extra: &str) -> (authy_sandbox::Sandbox, TestDir, String, String) {
    let (sandbox, id) = sandbox();
    let dir = TestDir::new();
    let extra = &format!("{extra}\n[offline]\nstate_dir = \"{}\"\n", dir.state_dir().display());
    let (text, code, secret) = match api {
        Api::Authy => (
            config_for(&dir, &sandbox, &format!("\"{}\" = {id}", current_user()), extra),
            sandbox.current_token(id).expect("token"),
            API_KEY.to_owned(),
        ),
        Api::Verify => {
            let factors = VerifyFactors::new(&sandbox);
            (
                verify_config_for(&dir, &sandbox, &factors.all(), extra),
                sandbox.verify_current_code(&factors.totp).expect("code"),
                sandbox.verify_account().api_key_secret,
            )
        }
    };
    dir.write_config(&text.replace("timeout_secs = 5\n", &format!("timeout_secs = 5\n{api_extra}\n")));
    dir.service("svc", "");
    (sandbox, dir, code, secret)
}

#[test]
fn proxy_variables_are_ignored_when_the_config_names_no_proxy() {
    for api in APIS {
        let (_sandbox, dir, code, _) = login_dir(api, "", "");
        let proxy = Tripwire::start();
        let mut env = proxy_variables(&proxy.url());
        env.push(("NO_PROXY", "nothing.invalid".into()));
        env.push(("no_proxy", "nothing.invalid".into()));
        let (result, text) = authenticate_in_child(&dir, &code, &env);
        assert_eq!(result, PAM_SUCCESS, "{api:?}: {text}");
        assert_eq!(proxy.connections(), 0, "{api:?}: the module went through the proxy of the environment");
    }
}

#[test]
fn the_configured_proxy_is_used_whatever_no_proxy_says() {
    for api in APIS {
        let configured = Tripwire::start();
        let from_env = Tripwire::start();
        let (sandbox, dir, code, _) = login_dir(api, &format!("proxy = \"{}\"", configured.url()), "");
        let mut env = proxy_variables(&from_env.url());
        env.push(("NO_PROXY", "*".into()));
        env.push(("no_proxy", "127.0.0.1,localhost".into()));
        let (result, text) = authenticate_in_child(&dir, &code, &env);
        // The tripwire is no real proxy: the login cannot complete, and it must not be let in.
        assert_eq!(result, PAM_AUTHINFO_UNAVAIL, "{api:?}: {text}");
        assert!(configured.connections() >= 1, "{api:?}: the configured proxy was bypassed: {text}");
        assert_eq!(from_env.connections(), 0, "{api:?}");
        assert!(sandbox.requests().is_empty(), "{api:?}: {:?}", sandbox.requests());
    }
}

/// The sandbox's CA is offered through every variable a TLS stack might read, while the
/// config names no `ca_file`: the server must stay untrusted.
#[test]
fn trust_anchor_variables_are_ignored() {
    assert!(
        pam_authy::transport::trust::system_bundle_present(),
        "no system CA bundle, so a config without ca_file cannot be built: install ca-certificates"
    );
    for api in APIS {
        let (sandbox, dir, code, _) = login_dir(api, "", "[auth]\nfailmode = \"safe\"");
        let ca = dir.write("env-ca.pem", &sandbox.ca_pem(), 0o644);
        let ca_dir = dir.path().join("certs");
        std::fs::create_dir(&ca_dir).expect("mkdir");
        std::fs::write(ca_dir.join("ca.pem"), sandbox.ca_pem()).expect("write");
        let text: String = std::fs::read_to_string(dir.config_path())
            .expect("config")
            .lines()
            .filter(|l| !l.starts_with("ca_file"))
            .map(|l| format!("{l}\n"))
            .collect();
        dir.write_config(&text);
        let ca = ca.display().to_string();
        let env = vec![
            ("SSL_CERT_FILE", ca.clone()),
            ("SSL_CERT_DIR", ca_dir.display().to_string()),
            ("REQUESTS_CA_BUNDLE", ca.clone()),
            ("CURL_CA_BUNDLE", ca.clone()),
            ("NIX_SSL_CERT_FILE", ca.clone()),
            ("GIT_SSL_CAINFO", ca),
        ];
        let (result, text) = authenticate_in_child(&dir, &code, &env);
        assert_eq!(result, PAM_AUTH_ERR, "{api:?}: the environment made the sandbox trusted: {text}");
        assert!(sandbox.requests().is_empty(), "{api:?}: {:?}", sandbox.requests());
    }
}

/// `SSLKEYLOGFILE` would hand the session keys (and with them the token and the API key on
/// the wire) to whoever names the file; `RUST_LOG` and friends must not make the module talk.
#[test]
fn key_log_and_log_switches_are_ignored() {
    for api in APIS {
        let (_sandbox, dir, code, secret) = login_dir(api, "", "");
        let keylog = dir.path().join("keys.log");
        let env = vec![
            ("SSLKEYLOGFILE", keylog.display().to_string()),
            ("RUST_LOG", "trace".into()),
            ("RUST_LOG_STYLE", "always".into()),
            ("RUST_BACKTRACE", "full".into()),
            ("TOKIO_WORKER_THREADS", "64".into()),
        ];
        let (result, text) = authenticate_in_child(&dir, &code, &env);
        assert_eq!(result, PAM_SUCCESS, "{api:?}: {text}");
        assert!(!keylog.exists(), "{api:?}: TLS session keys were written to {}", keylog.display());
        for word in ["TRACE", "DEBUG", "rustls", "reqwest", "hyper", "tokio", secret.as_str()] {
            assert!(!text.contains(word), "{api:?}: the module printed {word:?}: {text}");
        }
    }
}
