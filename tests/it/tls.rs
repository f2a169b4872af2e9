//! Kafka over TLS (and SASL) against the real broker, with stunnel4 terminating TLS in front of
//! Tansu (which serves none): the trusted CA and the right host name get through; an untrusted
//! CA, a wrong host name and credentials the broker does not know are refused; credentials
//! over plaintext are refused by Vigil itself.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::{free_port, python, required, run_ok, scratch, vigil, wait_for_port};

/// A private Tansu behind stunnel: clients dial `localhost:tls` with TLS.
struct TlsBroker {
    tansu: Child,
    stunnel: Child,
    tls: u16,
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        let _ = self.stunnel.kill();
        let _ = self.tansu.kill();
        let _ = self.stunnel.wait();
        let _ = self.tansu.wait();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A CA (`{name}-ca.pem`) and a server certificate it signs for `host` (`{name}.pem`, with its
/// key in it, as stunnel takes it).
fn certificates(dir: &Path, name: &str, host: &str) {
    certificates_for(dir, name, &format!("DNS:{host}"));
}

/// A CA (`{name}-ca.pem`) and a server certificate it signs for the subject alternative names
/// `san` (`DNS:localhost,IP:127.0.0.1`): `{name}.crt` and its key `{name}.key`, and both in
/// `{name}.pem`.
pub fn certificates_for(dir: &Path, name: &str, san: &str) {
    let host = san.split([',', ':']).nth(1).unwrap_or("localhost");
    let ca = format!("{name}-ca");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={ca}"),
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.pem"),
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={host}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
    std::fs::write(
        dir.join(format!("{name}.ext")),
        format!("subjectAltName={san}\n"),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.crt"),
        ],
    );
    let mut pem = std::fs::read_to_string(dir.join(format!("{name}.crt"))).unwrap();
    pem.push_str(&std::fs::read_to_string(dir.join(format!("{name}.key"))).unwrap());
    std::fs::write(dir.join(format!("{name}.pem")), pem).unwrap();
}

impl TlsBroker {
    fn start(dir: &Path, authentication: bool) -> Option<TlsBroker> {
        let tansu = std::env::var("VIGIL_TANSU").ok();
        let stunnel = ["stunnel4", "stunnel"].into_iter().find(|s| {
            Command::new(s)
                .arg("-version")
                .stderr(Stdio::null())
                .stdout(Stdio::null())
                .status()
                .is_ok()
        });
        let (Some(tansu), Some(stunnel)) = (tansu, stunnel) else {
            assert!(
                !required(),
                "no Tansu (VIGIL_TANSU) or no stunnel4: scripts/test installs both"
            );
            eprintln!("SKIPPED: no Tansu or stunnel4 (scripts/test installs them)");
            return None;
        };
        certificates(dir, "broker", "localhost");
        let (plain, tls) = (free_port(), free_port());
        let mut args = vec![
            "broker".to_owned(),
            "--listener-url".into(),
            format!("tcp://127.0.0.1:{plain}"),
            // Clients come back to the address advertised: the TLS one.
            "--advertised-listener-url".into(),
            format!("tcp://localhost:{tls}"),
            "--storage-engine".into(),
            "memory://tansu/".into(),
        ];
        if authentication {
            args.push("--authentication".into());
        }
        let tansu = Command::new(tansu)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let conf = dir.join("stunnel.conf");
        std::fs::write(&conf, format!(
            "foreground = yes\npid =\n[kafka]\naccept = 127.0.0.1:{tls}\nconnect = 127.0.0.1:{plain}\ncert = {}\n",
            dir.join("broker.pem").display()
        )).unwrap();
        let stunnel = Command::new(stunnel)
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_port(plain, "Tansu", 10);
        wait_for_port(tls, "stunnel", 10);
        Some(TlsBroker {
            tansu,
            stunnel,
            tls,
        })
    }
}

/// A pipeline reading `topic` from the TLS broker with `security` (TOML lines).
fn pipeline(dir: &Path, name: &str, brokers: &str, security: &str) -> PathBuf {
    let demo = crate::demo_text();
    let (_, rest) = demo.split_once("[source]").unwrap();
    let rest = &rest[rest.find("\n[").unwrap()..];
    let text = format!(
        "[source]\nkind = \"kafka\"\nbrokers = \"{brokers}\"\ntopic = \"vitals\"\ngroup = \"{name}\"\n\
         [source.security]\n{security}\n{rest}"
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Reads the topic to its end: a run that reads nothing for `idle` stops, and fails when the
/// topic was not read to its end (a broker it could not trust, or a slow start on a loaded
/// machine: the reads that must succeed are given longer).
fn drain(pipeline: &Path, idle: &str) -> std::process::Output {
    vigil(&[
        "run",
        pipeline.to_str().unwrap(),
        "--exit-when-idle",
        idle,
        "--quiet",
        "--summary-json",
        "--progress",
        "never",
    ])
}

#[test]
fn kafka_over_tls_reads_only_from_the_broker_its_ca_and_host_name_vouch_for() {
    let dir = scratch("tls_kafka");
    let Some(broker) = TlsBroker::start(&dir, false) else {
        return;
    };
    certificates(&dir, "stranger", "localhost");
    let Some(py) = crate::kafka::python_with_confluent_kafka() else {
        return;
    };
    let ca = dir.join("broker-ca.pem");
    // 300 observations produced over TLS by another client.
    python(
        &py,
        &format!(
            r#"
from confluent_kafka import Producer
p = Producer({{"bootstrap.servers": "localhost:{port}", "security.protocol": "ssl", "ssl.ca.location": "{ca}"}})
for i in range(300):
    p.produce("vitals", ('{{"patient":"tls-%d","device":"m-%d","time":"2026-01-05T00:%02d:00Z","vital":"heart_rate","value":80,"unit":"/min"}}' % (i % 3, i % 3, i // 3 % 60)).encode())
assert p.flush(30) == 0
"#,
            port = broker.tls,
            ca = ca.display()
        ),
    );
    let tls = |ca: &Path| format!("protocol = \"ssl\"\nca_file = \"{}\"", ca.display());
    let good = pipeline(
        &dir,
        "good",
        &format!("localhost:{}", broker.tls),
        &tls(&ca),
    );
    let o = drain(&good, "20s");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stderr = String::from_utf8_lossy(&o.stderr);
    let summary: serde_json::Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    // Every message read: scored, or counted as what it was.
    let read: u64 = ["observations", "duplicates", "late", "held", "rejected"]
        .iter()
        .map(|k| summary[*k].as_u64().unwrap())
        .sum();
    assert_eq!(read, 300, "{stderr}");

    // A CA that did not sign the broker's certificate, and a host name it does not bear.
    let stranger = pipeline(
        &dir,
        "stranger",
        &format!("localhost:{}", broker.tls),
        &tls(&dir.join("stranger-ca.pem")),
    );
    let wrong_host = pipeline(
        &dir,
        "wrong-host",
        &format!("127.0.0.1:{}", broker.tls),
        &tls(&ca),
    );
    for refused in [stranger, wrong_host] {
        let o = drain(&refused, "5s");
        assert!(
            !o.status.success(),
            "{} read from a broker it cannot trust",
            refused.display()
        );
        // Why, when librdkafka has said so before the metadata request timed out; on a
        // loaded machine it may not have yet, and the broker is then only unreachable (the
        // same broker served the trusted read above).
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.to_lowercase().contains("certificate")
                || err.contains("SSL")
                || err.contains("ssl")
                || err.contains("cannot reach"),
            "{err}"
        );
    }
}

#[test]
fn credentials_the_broker_does_not_know_are_refused_and_never_shown() {
    let dir = scratch("tls_scram");
    let Some(broker) = TlsBroker::start(&dir, true) else {
        return;
    };
    let password = dir.join("kafka.password");
    std::fs::write(&password, "not-a-real-secret-9f2c\n").unwrap();
    let security = format!(
        "protocol = \"sasl_ssl\"\nmechanism = \"SCRAM-SHA-512\"\nusername = \"vigil\"\n\
         password_file = \"{}\"\nca_file = \"{}\"",
        password.display(),
        dir.join("broker-ca.pem").display()
    );
    let scram = pipeline(
        &dir,
        "scram",
        &format!("localhost:{}", broker.tls),
        &security,
    );
    run_ok(&["validate", scram.to_str().unwrap()]);
    let o = drain(&scram, "5s");
    assert!(!o.status.success(), "an unknown user read the topic");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("SASL") || err.contains("authentication"),
        "{err}"
    );
    assert!(
        !err.contains("not-a-real-secret"),
        "the password is shown: {err}"
    );

    // The same credentials over plaintext: Vigil refuses them before anything connects.
    let plaintext = security.replace("sasl_ssl", "sasl_plaintext");
    let clear = pipeline(
        &dir,
        "clear",
        &format!("localhost:{}", broker.tls),
        &plaintext,
    );
    for command in ["validate", "run"] {
        let o = vigil(&[command, clear.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(3), "{command}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("credentials over plaintext"), "{err}");
        assert!(!err.contains("not-a-real-secret"), "{err}");
    }
}
