//! The Verify side's test hooks and faults: the control interface's `/verify` and `/clock`
//! endpoints, fault modes on `/v2` paths (with Twilio-shaped error bodies and the `Verify`
//! scope), and what the binary prints for a Verify client.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use authy_sandbox::{Fault, FaultScope, Sandbox, SandboxConfig};
use common::*;
use serde_json::Value;

const IDENTITY: &str = "6b1d0c9a-3e5b-7d4e";

fn start() -> Sandbox {
    let sb = Sandbox::start(SandboxConfig {
        control_listen: Some("127.0.0.1:0".parse().expect("addr")),
        ..SandboxConfig::default()
    })
    .expect("start");
    sb.set_clock(Some(1_800_000_015));
    sb
}

fn ok_json(r: &Resp) -> Value {
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

#[test]
fn control_shows_credentials_and_sets_up_factors() {
    let sb = start();
    let facts = ok_json(&control(&sb, "GET", "/verify", None));
    let a = sb.verify_account();
    assert_eq!(facts["service_sid"], a.service_sid.as_str());
    assert_eq!(facts["api_key_secret"], a.api_key_secret.as_str());
    assert_eq!(facts["api_url"], sb.url().as_str());

    let service = ok_json(&control(&sb, "POST", "/verify/services", Some(r#"{"friendly_name":"Second"}"#)))["sid"]
        .as_str()
        .expect("sid")
        .to_owned();
    assert!(service.starts_with("VA"));
    let key = ok_json(&control(&sb, "POST", "/verify/keys", None));
    let req = verify_request(
        "GET",
        &format!("/v2/Services/{service}"),
        Some((key["sid"].as_str().expect("sid"), key["secret"].as_str().expect("secret"))),
        None,
    );
    let r = parse_response(&raw_exchange(&sb, req.as_bytes()).expect("exchange"));
    assert_eq!(r.json()["friendly_name"], "Second");

    let entity = ok_json(&control(&sb, "POST", &format!("/verify/services/{service}/entities/{IDENTITY}"), None));
    assert!(entity["sid"].as_str().expect("sid").starts_with("YE"));
    assert_eq!(control(&sb, "POST", &format!("/verify/services/{service}/entities/bad"), None).status, 404);

    let f = ok_json(&control(
        &sb,
        "POST",
        &format!("/verify/services/{service}/entities/{IDENTITY}/factors"),
        Some(r#"{"factor_type":"totp","digits":8,"alg":"sha256","secret":"GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"}"#),
    ));
    assert_eq!(f["secret"], "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    let sid = f["sid"].as_str().expect("sid").to_owned();
    let code = ok_json(&control(&sb, "GET", &format!("/verify/factors/{sid}/code"), None))["code"]
        .as_str()
        .expect("code")
        .to_owned();
    assert_eq!(code.len(), 8);
    let at = ok_json(&control(&sb, "GET", &format!("/verify/factors/{sid}/code?at=1800000015"), None));
    assert_eq!(at["code"], code.as_str());
    // The factor is verified and its code approves a challenge through the API.
    let r = verify_post(
        &sb,
        &format!("/v2/Services/{service}/Entities/{IDENTITY}/Challenges"),
        &format!("FactorSid={sid}&AuthPayload={code}"),
    );
    assert_eq!(r.json()["status"], "approved", "{}", r.body);
    for bad in [r#"{"digits":9}"#, r#"{"alg":"md5"}"#, r#"{"factor_type":"sms"}"#, r#"{"secret":"!!"}"#] {
        let r = control(&sb, "POST", &format!("/verify/services/{service}/entities/{IDENTITY}/factors"), Some(bad));
        assert!(r.status == 400 || r.status == 404, "{bad}: {}", r.status);
    }
    assert_eq!(control(&sb, "GET", "/verify/factors/YF00000000000000000000000000000000/code", None).status, 404);
}

#[test]
fn control_reads_codes_answers_pushes_and_moves_the_clock() {
    let sb = start();
    let a = sb.verify_account();
    let r = verify_post(&sb, &format!("/v2/Services/{}/Verifications", a.service_sid), "To=%2B15551234567&Channel=sms");
    let ve = r.json()["sid"].as_str().expect("sid").to_owned();
    let list = ok_json(&control(&sb, "GET", "/verify/verifications", None));
    assert_eq!(list[0]["sid"], ve.as_str());
    assert_eq!(list[0]["to"], "+15551234567");
    let code = ok_json(&control(&sb, "GET", &format!("/verify/verifications/{ve}/code"), None))["code"]
        .as_str()
        .expect("code")
        .to_owned();
    assert_eq!(list[0]["code"], code.as_str());
    assert_eq!(control(&sb, "GET", "/verify/verifications/VEnope/code", None).status, 404);

    assert_eq!(ok_json(&control(&sb, "POST", "/verify/check_status", Some(r#"{"status":200}"#)))["status"], 200);
    assert_eq!(control(&sb, "POST", "/verify/check_status", Some(r#"{"status":204}"#)).status, 400);
    let r = verify_post(
        &sb,
        &format!("/v2/Services/{}/VerificationCheck", a.service_sid),
        &format!("VerificationSid={ve}&Code={code}"),
    );
    assert_eq!((r.status, r.json()["status"].as_str()), (200, Some("approved")));

    let f = ok_json(&control(
        &sb,
        "POST",
        &format!("/verify/services/{}/entities/{IDENTITY}/factors", a.service_sid),
        Some(r#"{"factor_type":"push"}"#),
    ));
    let form = format!(
        "FactorSid={}&Details.Message=Login&Details.Fields=%7B%22label%22%3A%22Host%22%2C%22value%22%3A%22h1%22%7D&HiddenDetails=%7B%22ip%22%3A%22192.0.2.1%22%7D",
        f["sid"].as_str().expect("sid")
    );
    let yc = verify_post(&sb, &format!("/v2/Services/{}/Entities/{IDENTITY}/Challenges", a.service_sid), &form).json()
        ["sid"]
        .as_str()
        .expect("sid")
        .to_owned();
    let seen = ok_json(&control(&sb, "GET", "/verify/challenges", None));
    assert_eq!(seen[0]["message"], "Login");
    assert_eq!(seen[0]["fields"][0], serde_json::json!({"label":"Host","value":"h1"}));
    assert_eq!(seen[0]["hidden_details"], serde_json::json!({"ip":"192.0.2.1"}));
    assert_eq!(seen[0]["status"], "pending");
    assert_eq!(control(&sb, "POST", &format!("/verify/challenges/{yc}"), Some(r#"{"status":"maybe"}"#)).status, 400);
    ok_json(&control(&sb, "POST", &format!("/verify/challenges/{yc}"), Some(r#"{"status":"denied"}"#)));
    let path = format!("/v2/Services/{}/Entities/{IDENTITY}/Challenges/{yc}", a.service_sid);
    assert_eq!(verify_get(&sb, &path).json()["status"], "denied");

    // The clock: advance, set, back to real time.
    assert_eq!(ok_json(&control(&sb, "POST", "/clock", Some(r#"{"advance":600}"#)))["now"], 1_800_000_615u64);
    assert_eq!(ok_json(&control(&sb, "GET", "/clock", None))["now"], 1_800_000_615u64);
    assert_eq!(ok_json(&control(&sb, "POST", "/clock", Some(r#"{"unix":1900000000}"#)))["now"], 1_900_000_000u64);
    let real = ok_json(&control(&sb, "POST", "/clock", Some(r#"{"unix":null}"#)))["now"].as_u64().expect("now");
    assert!(real > 1_700_000_000 && real < 1_900_000_000);
    assert_eq!(control(&sb, "POST", "/clock", Some("{}")).status, 400);
    let stats = ok_json(&control(&sb, "GET", "/verify/stats", None));
    assert_eq!(
        (stats["sends"].as_u64(), stats["checks"].as_u64(), stats["challenges"].as_u64()),
        (Some(1), Some(1), Some(1))
    );
}

#[test]
fn faults_hit_verify_paths_with_twilio_error_bodies() {
    let sb = start();
    let path = format!("/v2/Services/{}", sb.verify_account().service_sid);
    sb.set_fault(FaultScope::Global, Some(Fault::Status(503)));
    let r = verify_get(&sb, &path);
    assert_eq!(r.status, 503);
    assert_eq!(
        r.body,
        r#"{"code":20503,"message":"Service Unavailable","more_info":"https://www.twilio.com/docs/errors/20503","status":503}"#
    );
    sb.set_fault(FaultScope::Global, Some(Fault::Status(429)));
    assert_eq!(verify_get(&sb, &path).json()["code"], 20429);
    sb.set_fault(FaultScope::Global, Some(Fault::InvalidJson));
    let r = verify_get(&sb, &path);
    assert!(serde_json::from_str::<Value>(&r.body).is_err());
    sb.set_fault(FaultScope::Global, Some(Fault::Html));
    assert!(verify_get(&sb, &path).header("content-type").is_some_and(|c| c.starts_with("text/html")));
    sb.set_fault(FaultScope::Global, Some(Fault::Redirect("https://127.0.0.1:9/v2".into())));
    let r = verify_get(&sb, &path);
    assert_eq!((r.status, r.header("location")), (302, Some("https://127.0.0.1:9/v2")));
    sb.set_fault(FaultScope::Global, None);

    // The Verify scope leaves the Authy API alone and beats the global rule on /v2.
    let id = sb.add_user("a@example.com", "555-123-1185", 1);
    sb.set_fault(FaultScope::Verify, Some(Fault::Status(500)));
    sb.set_fault(FaultScope::Global, Some(Fault::Status(502)));
    assert_eq!(verify_get(&sb, &path).status, 500);
    assert_eq!(get(&sb, &format!("/protected/json/users/{id}/status")).status, 502);
    sb.set_fault(FaultScope::Global, None);
    assert_eq!(get(&sb, &format!("/protected/json/users/{id}/status")).status, 200);
    sb.set_fault(FaultScope::Verify, None);
    // Counted: the next two Verify requests only; faults act before authentication.
    sb.set_fault_times(FaultScope::Verify, Fault::Body(200, r#"{"status":"approved"}"#.into()), 2);
    let unauthenticated = parse_response(
        &raw_exchange(&sb, format!("GET {path} HTTP/1.1\r\nConnection: close\r\n\r\n").as_bytes()).expect("x"),
    );
    assert_eq!(unauthenticated.body, r#"{"status":"approved"}"#);
    assert_eq!(verify_get(&sb, &path).body, r#"{"status":"approved"}"#);
    assert_eq!(verify_get(&sb, &path).status, 200);
    assert_eq!(verify_get(&sb, &path).json()["sid"], sb.verify_account().service_sid.as_str());
    // And through the control interface, with the "verify" scope spelling.
    let r = control(&sb, "POST", "/faults", Some(r#"{"scope":"verify","fault":{"status":503},"times":1}"#));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(verify_get(&sb, &path).status, 503);
    assert_eq!(verify_get(&sb, &path).status, 200);
}

#[test]
fn hang_and_reset_apply_to_verify_paths() {
    let sb = start();
    let path = format!("/v2/Services/{}", sb.verify_account().service_sid);
    sb.set_fault_times(FaultScope::Verify, Fault::Reset, 1);
    let a = sb.verify_account();
    let req = verify_request("GET", &path, Some((&a.api_key_sid, &a.api_key_secret)), None);
    let out = raw_exchange(&sb, req.as_bytes());
    assert!(out.map(|b| b.is_empty()).unwrap_or(true));
    sb.set_fault_times(FaultScope::Verify, Fault::Slow(std::time::Duration::from_millis(200)), 1);
    let t = std::time::Instant::now();
    assert_eq!(verify_get(&sb, &path).status, 200);
    assert!(t.elapsed() >= std::time::Duration::from_millis(200));
}

#[test]
fn the_binary_prints_what_a_verify_client_needs() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_authy-sandbox"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut facts = std::collections::HashMap::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        if line == "ready" {
            break;
        }
        if let Some((k, v)) = line.split_once('=') {
            facts.insert(k.to_owned(), v.to_owned());
        }
    }
    let result = std::panic::catch_unwind(|| {
        for k in [
            "verify_url",
            "verify_service_sid",
            "verify_api_key_sid",
            "verify_api_key_secret",
            "verify_account_sid",
            "verify_auth_token",
        ] {
            assert!(facts.contains_key(k), "{k} missing: {facts:?}");
        }
        // Secrets are random per run, SIDs well-formed.
        assert_ne!(facts["verify_api_key_secret"], authy_sandbox::default_verify_account().api_key_secret);
        assert!(facts["verify_service_sid"].starts_with("VA") && facts["verify_service_sid"].len() == 34);
        let ca = std::fs::read_to_string(&facts["ca_file"]).expect("ca");
        let addr = facts["verify_url"].trim_start_matches("https://").to_owned();
        let req = verify_request(
            "GET",
            &format!("/v2/Services/{}", facts["verify_service_sid"]),
            Some((&facts["verify_api_key_sid"], &facts["verify_api_key_secret"])),
            None,
        );
        let r = parse_response(&raw_exchange_to(&addr, &ca, req.as_bytes()).expect("fetch"));
        assert_eq!(r.status, 200, "{}", r.body);
        let req = verify_request(
            "GET",
            &format!("/v2/Services/{}", facts["verify_service_sid"]),
            Some((&facts["verify_account_sid"], &facts["verify_auth_token"])),
            None,
        );
        assert_eq!(parse_response(&raw_exchange_to(&addr, &ca, req.as_bytes()).expect("fetch")).status, 200);
        let _ = std::fs::remove_file(&facts["ca_file"]);
    });
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
