use super::*;

fn parse(text: &str) -> Result<crate::config::PipelineConfig, crate::config::ConfigError> {
    crate::config::PipelineConfig::parse(text, Some(Path::new("/etc/vigil")))
}

fn problems(security: &str, properties: &str) -> Vec<String> {
    let text = format!(
        "[source]\nkind = \"kafka\"\nbrokers = \"broker.example:9093\"\ntopic = \"vitals\"\n\
         [source.security]\n{security}\n[source.properties]\n{properties}\n"
    );
    match parse(&text) {
        Ok(_) => Vec::new(),
        Err(e) => e
            .problems
            .iter()
            .map(|p| format!("{:?}: {}", p.line, p.message))
            .collect(),
    }
}

const SCRAM: &str =
    "mechanism = \"SCRAM-SHA-512\"\nusername = \"vigil\"\npassword_env = \"VIGIL_TEST_NOT_SET\"";

#[test]
fn scram_over_tls_is_accepted_and_its_files_resolved() {
    assert!(
        problems(
            &format!("protocol = \"sasl_ssl\"\n{SCRAM}\nca_file = \"ca.pem\""),
            ""
        )
        .is_empty()
    );
    let text = format!(
        "[source]\nkind = \"kafka\"\nbrokers = \"b:9093\"\ntopic = \"t\"\n[source.security]\n\
         protocol = \"sasl_ssl\"\n{SCRAM}\nca_file = \"certs/ca.pem\"\n"
    );
    let config = parse(&text).unwrap();
    let crate::config::SourceConfig::Kafka(kafka) = config.source else {
        panic!()
    };
    assert_eq!(
        kafka.security.ca_file.as_deref(),
        Some(Path::new("/etc/vigil/certs/ca.pem"))
    );
}

#[test]
fn credentials_over_plaintext_are_refused_unless_allowed() {
    let p = problems(&format!("protocol = \"sasl_plaintext\"\n{SCRAM}"), "");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("credentials over plaintext"), "{p:?}");
    assert!(p[0].starts_with("Some(6)"), "at the protocol's line: {p:?}");
    let allowed =
        format!("protocol = \"sasl_plaintext\"\n{SCRAM}\nallow_plaintext_credentials = true");
    assert!(problems(&allowed, "").is_empty());
    // A username without SASL would be sent nowhere, or in the clear: said, not ignored.
    let p = problems("username = \"vigil\"", "");
    assert!(
        p[0].contains("write \\\"sasl_ssl\\\"") || p[0].contains("sasl_ssl"),
        "{p:?}"
    );
}

#[test]
fn secrets_and_the_protocol_cannot_be_set_through_properties() {
    let p = problems(
        "",
        "\"sasl.password\" = \"hunter2\"\n\"security.protocol\" = \"sasl_plaintext\"",
    );
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(p.iter().any(|m| m.contains("is a secret")), "{p:?}");
    assert!(
        p.iter().any(|m| m.contains("security table's to set")),
        "{p:?}"
    );
    assert!(p.iter().all(|m| !m.contains("hunter2")), "{p:?}");
}

#[test]
fn sasl_without_what_it_needs_is_refused() {
    let p = problems("protocol = \"sasl_ssl\"", "");
    assert_eq!(p.len(), 3, "mechanism, username and password: {p:?}");
    let both = format!("protocol = \"sasl_ssl\"\n{SCRAM}\npassword_file = \"p\"");
    assert!(problems(&both, "")[0].contains("not both"));
    let p = problems("protocol = \"sasl_ssl\"\nmechanism = \"MD5\"", "");
    assert!(
        p[0].contains("MD5") && p[0].contains("SCRAM-SHA-512"),
        "{p:?}"
    );
}

#[test]
fn the_password_is_read_at_connect_time_and_never_shown() {
    let dir = std::env::temp_dir().join(format!("vigil-kafka-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("password");
    std::fs::write(&file, "correct horse\n").unwrap();
    let security = KafkaSecurity {
        protocol: Protocol::SaslSsl,
        mechanism: Some(Mechanism::ScramSha256),
        username: Some("vigil".into()),
        password_file: Some(file.clone()),
        ..KafkaSecurity::default()
    };
    let mut config = ClientConfig::new();
    security.apply(&mut config).unwrap();
    assert_eq!(config.get("sasl.password"), Some("correct horse"));
    assert_eq!(config.get("security.protocol"), Some("sasl_ssl"));
    assert_eq!(
        config.get("ssl.endpoint.identification.algorithm"),
        Some("https")
    );
    assert!(!format!("{security:?}").contains("correct horse"));
    std::fs::write(&file, "\n").unwrap();
    let err = security
        .apply(&mut ClientConfig::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("is empty"), "{err}");
    let from_env = KafkaSecurity {
        password_file: None,
        password_env: Some("VIGIL_TEST_SURELY_UNSET".into()),
        ..security
    };
    let err = from_env
        .apply(&mut ClientConfig::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("VIGIL_TEST_SURELY_UNSET is not set"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
