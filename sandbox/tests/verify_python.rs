//! Fidelity check against a real client: Twilio's official Python helper library (pinned)
//! drives the sandbox's Verify endpoints, with the library's base URL pointed at the sandbox
//! and `REQUESTS_CA_BUNDLE` at its CA. If the library parses every reply and the flows end as
//! they do against Twilio, the sandbox speaks the API as a real client expects.
//!
//! Needs `target/py-twilio` (a venv with twilio==9.3.0, made by scripts/install-deps), so it is
//! ignored in a plain `cargo test`; scripts/test-all runs it with `--ignored`, and there a
//! missing venv fails instead of passing.

mod common;

use std::path::PathBuf;
use std::process::Command;

use authy_sandbox::{Sandbox, SandboxConfig};

const SCRIPT: &str = r#"
import base64, hashlib, hmac, json, os, struct, time, urllib.request
from twilio.rest import Client
from twilio.base.exceptions import TwilioRestException

env = os.environ
def control(method, path, body=None):
    req = urllib.request.Request(env["CONTROL_URL"] + path, method=method,
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("Authorization", "Bearer " + env["CONTROL_TOKEN"])
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())

def totp(secret_b32, at=None):
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    counter = int((at if at is not None else control("GET", "/clock")["now"]) // 30)
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    off = mac[-1] & 15
    return "%06d" % ((struct.unpack(">I", mac[off:off + 4])[0] & 0x7fffffff) % 1000000)

def error_of(fn):
    try:
        fn()
    except TwilioRestException as e:
        return [e.status, e.code]
    return None

out = {}
client = Client(env["KEY_SID"], env["KEY_SECRET"], env["ACCOUNT_SID"])
client.verify.base_url = env["SB_URL"]
svc = client.verify.v2.services(env["SERVICE_SID"])
s = svc.fetch()
out["service"] = [s.sid, s.code_length, s.totp["time_step"], s.date_created.year > 2000]

v = svc.verifications.create(to="+15017122661", channel="sms")
out["verification"] = [v.sid[:2], v.status, v.valid, len(v.send_code_attempts)]
code = control("GET", "/verify/verifications/%s/code" % v.sid)["code"]
wrong = "".join(str((int(c) + 1) % 10) for c in code)
c = svc.verification_checks.create(verification_sid=v.sid, code=wrong)
out["wrong_check"] = [c.status, c.valid]
c = svc.verification_checks.create(verification_sid=v.sid, code=code)
out["right_check"] = [c.status, c.valid, c.sid == v.sid]
out["check_again"] = error_of(lambda: svc.verification_checks.create(verification_sid=v.sid, code=code))
out["fetch_gone"] = error_of(lambda: svc.verifications(v.sid).fetch())
v2 = svc.verifications.create(to="+15017122662", channel="call")
out["cancel"] = svc.verifications(v2.sid).update(status="canceled").status

ident = "5f2b3c4d-aaaa-bbbb-cccc-0123456789ab"
e = svc.entities.create(identity=ident)
out["entity"] = [e.sid[:2], e.identity]
out["entity_again"] = error_of(lambda: svc.entities.create(identity=ident))
f = svc.entities(ident).new_factors.create(friendly_name="laptop", factor_type="totp")
secret = f.binding["secret"]
out["factor"] = [f.sid[:2], f.status, f.config["code_length"], f.binding["uri"].startswith("otpauth://totp/")]
f = svc.entities(ident).factors(f.sid).update(auth_payload=totp(secret))
out["factor_verified"] = f.status
out["factors_listed"] = [x.sid == f.sid for x in svc.entities(ident).factors.list()]
ch = svc.entities(ident).challenges.create(factor_sid=f.sid, auth_payload=totp(secret))
out["totp_challenge"] = [ch.status, ch.factor_sid == f.sid, ch.identity == ident, ch.expiration_date.year > 2000]

push = control("POST", "/verify/services/%s/entities/%s/factors" % (env["SERVICE_SID"], ident), {"factor_type": "push"})
pc = svc.entities(ident).challenges.create(
    factor_sid=push["sid"], details_message="Login to host1",
    details_fields=[{"label": "User", "value": "alice"}, {"label": "From", "value": "192.0.2.7"}],
    hidden_details={"session": "ab12"})
out["push_created"] = [pc.status, pc.details, pc.hidden_details]
control("POST", "/verify/challenges/%s" % pc.sid, {"status": "approved"})
out["push_fetched"] = svc.entities(ident).challenges(pc.sid).fetch().status

bad = Client(env["KEY_SID"], "wrong-secret", env["ACCOUNT_SID"])
bad.verify.base_url = env["SB_URL"]
out["bad_credentials"] = error_of(lambda: bad.verify.v2.services(env["SERVICE_SID"]).fetch())
out["bad_parameter"] = error_of(lambda: svc.verifications.create(to="12345", channel="sms"))
print(json.dumps(out))
"#;

fn python() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/py-twilio/bin/python3")
}

#[test]
#[ignore = "needs python3 with twilio==9.3.0 in target/py-twilio (scripts/install-deps makes it); scripts/test-all runs it with --ignored"]
fn the_official_python_helper_library_drives_the_sandbox() {
    let py = python();
    assert!(py.exists(), "{} missing: run scripts/install-deps", py.display());
    let sb = Sandbox::start(SandboxConfig {
        control_listen: Some("127.0.0.1:0".parse().expect("addr")),
        ..SandboxConfig::default()
    })
    .expect("start");
    let dir = tempfile::tempdir().expect("tmp");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, sb.ca_pem()).expect("ca");
    let script = dir.path().join("drive.py");
    std::fs::write(&script, SCRIPT).expect("script");
    let a = sb.verify_account();
    let out = Command::new(&py)
        .arg(&script)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("REQUESTS_CA_BUNDLE", &ca)
        .env("NO_PROXY", "*")
        .env("SB_URL", sb.url())
        .env("CONTROL_URL", sb.control_url().expect("control"))
        .env("CONTROL_TOKEN", sb.control_token())
        .env("ACCOUNT_SID", &a.account_sid)
        .env("KEY_SID", &a.api_key_sid)
        .env("KEY_SECRET", &a.api_key_secret)
        .env("SERVICE_SID", &a.service_sid)
        .output()
        .expect("run python");
    assert!(out.status.success(), "python failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json from the script");
    let expected = serde_json::json!({
        "service": [a.service_sid, 6, 30, true],
        "verification": ["VE", "pending", false, 1],
        "wrong_check": ["pending", false],
        "right_check": ["approved", true, true],
        "check_again": [404, 20404],
        "fetch_gone": [404, 20404],
        "cancel": "canceled",
        "entity": ["YE", "5f2b3c4d-aaaa-bbbb-cccc-0123456789ab"],
        "entity_again": [409, 60301],
        "factor": ["YF", "unverified", 6, true],
        "factor_verified": "verified",
        "factors_listed": [true],
        "totp_challenge": ["approved", true, true, true],
        "push_created": [
            "pending",
            {"message": "Login to host1", "fields": [{"label": "User", "value": "alice"}, {"label": "From", "value": "192.0.2.7"}]},
            {"session": "ab12"}
        ],
        "push_fetched": "approved",
        "bad_credentials": [401, 20003],
        "bad_parameter": [400, 60200],
    });
    assert_eq!(r, expected);
    // Every request carried the library's own headers and Basic auth with the key SID.
    let reqs = sb.requests();
    assert!(reqs.iter().all(|q| q.user_agent.as_deref().is_some_and(|ua| ua.starts_with("twilio-python/9.3.0"))));
    assert!(reqs.iter().any(|q| q.api_key.as_deref() == Some(a.api_key_sid.as_str())));
}
