//! The risk model end to end: the stream scores a patient exactly as `vigil evaluate` does (one
//! feature code path), training is deterministic for a seed, and a model whose features the
//! pipeline does not compute is refused with a clear error.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{run_ok, scratch, vigil};

fn physionet2019() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/physionet2019-setB-dev")
}

fn shipped_model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/vigil-sepsis.json")
}

/// The shipped PhysioNet 2019 pipeline on the first `limit` stays, with its risk section
/// replaced by `risk`.
fn pipeline(dir: &Path, limit: usize, risk: &str) -> PathBuf {
    let shipped = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pipelines/physionet2019.toml"),
    )
    .unwrap();
    let mut text = String::from("sinks = []\n");
    let mut skip = false;
    for line in shipped.lines() {
        if line.starts_with('[') {
            skip = line == "[source]" || line == "[risk]" || line == "[[sinks]]";
        }
        if !skip {
            text.push_str(line);
            text.push('\n');
        }
    }
    text.push_str(&format!(
        "\n[source]\nkind = \"physionet2019\"\npath = {:?}\nlimit = {limit}\n\n{risk}",
        physionet2019().to_str().unwrap()
    ));
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_stream_scores_a_patient_as_evaluate_does() {
    if crate::shared_dataset("physionet2019-setB-dev").is_none() {
        return;
    }
    let dir = scratch("risk_stream_equals_evaluate");
    let model = shipped_model();
    // A low threshold, so that many patients cross it both ways.
    let risk = format!(
        "[risk]\nmodel = {:?}\nthreshold = 0.02\nclear_below = 0.015\n",
        model.to_str().unwrap()
    );
    let pipeline = pipeline(&dir, 150, &risk);
    let alerts = dir.join("alerts.jsonl");
    run_ok(&[
        "run",
        pipeline.to_str().unwrap(),
        "--quiet",
        "--alerts",
        alerts.to_str().unwrap(),
    ]);
    let predictions = dir.join("predictions.jsonl");
    run_ok(&[
        "evaluate",
        "--model",
        model.to_str().unwrap(),
        "--data",
        physionet2019().to_str().unwrap(),
        "--limit",
        "150",
        "--predictions",
        predictions.to_str().unwrap(),
    ]);
    let mut by_row: HashMap<(String, String), f64> = HashMap::new();
    for line in std::fs::read_to_string(&predictions).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        by_row.insert(
            (
                v["patient"].as_str().unwrap().to_owned(),
                v["time"].as_str().unwrap().to_owned(),
            ),
            v["probability"].as_f64().unwrap(),
        );
    }
    let mut compared = 0;
    let mut raised = 0;
    for line in std::fs::read_to_string(&alerts).unwrap().lines() {
        let alert: Value = serde_json::from_str(line).unwrap();
        if alert["kind"] != "risk" {
            continue;
        }
        let key = (
            alert["patient"].as_str().unwrap().to_owned(),
            alert["time"].as_str().unwrap().to_owned(),
        );
        let streamed = alert["risk"]["probability"].as_f64().unwrap();
        let evaluated = by_row
            .get(&key)
            .unwrap_or_else(|| panic!("no evaluated row for {key:?}"));
        assert_eq!(streamed, *evaluated, "{key:?}");
        // The alert says which model, and what drives the probability.
        assert_eq!(alert["risk"]["model"], "vigil-sepsis");
        assert_eq!(alert["risk"]["top_features"].as_array().unwrap().len(), 5);
        compared += 1;
        if alert["event"] == "raised" {
            raised += 1;
            assert!(streamed >= 0.02);
        } else {
            assert!(streamed < 0.015);
        }
    }
    assert!(compared >= 30 && raised >= 10, "{compared} risk alerts");
}

#[test]
fn training_is_deterministic_for_a_seed() {
    if crate::shared_dataset("physionet2019-setB-dev").is_none() {
        return;
    }
    let dir = scratch("risk_training_deterministic");
    let train = |out: &str, seed: &str| {
        let out = dir.join(out);
        run_ok(&[
            "train",
            "--data",
            physionet2019().to_str().unwrap(),
            "--limit",
            "120",
            "--trees",
            "8",
            "--seed",
            seed,
            "--out",
            out.to_str().unwrap(),
        ]);
        let model = std::fs::read(out.join("vigil-sepsis.json")).unwrap();
        let card = std::fs::read_to_string(out.join("vigil-sepsis.md")).unwrap();
        assert!(card.contains("| NEWS2 ≥ 5 |"), "{card}");
        model
    };
    // Two processes (linfa's trees break ties in a per-process hash order: see train.rs).
    assert_eq!(
        train("a", "3"),
        train("b", "3"),
        "the same seed gave another model"
    );
}

#[test]
fn a_model_whose_features_the_pipeline_lacks_is_refused() {
    if crate::shared_dataset("physionet2019-setB-dev").is_none() {
        return;
    }
    let dir = scratch("risk_feature_mismatch");
    let risk = format!("[risk]\nmodel = {:?}\n", shipped_model().to_str().unwrap());
    let pipeline = pipeline(&dir, 5, &risk);
    // Drop the 12 h window the model reads.
    let text = std::fs::read_to_string(&pipeline).unwrap().replace(
        "durations = [\"1h\", \"4h\", \"12h\"]",
        "durations = [\"1h\", \"4h\"]",
    );
    std::fs::write(&pipeline, text).unwrap();
    let o = vigil(&["run", pipeline.to_str().unwrap(), "--quiet"]);
    assert_eq!(o.status.code(), Some(3), "a bad configuration");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("does not fit this pipeline")
            && stderr.contains("needs a 12h window")
            && stderr.contains("add 12h to them"),
        "{stderr}"
    );
    let o = vigil(&["validate", pipeline.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "a bad configuration");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("needs a 12h window"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // A model file that is not one.
    let bogus = dir.join("bogus.json");
    std::fs::write(&bogus, "{\"format\": 1}").unwrap();
    let o = vigil(&[
        "evaluate",
        "--model",
        bogus.to_str().unwrap(),
        "--data",
        physionet2019().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3), "a model that is not one");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("is not a Vigil risk model"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn evaluate_json_has_the_documented_keys() {
    if crate::shared_dataset("physionet2019-setB-dev").is_none() {
        return;
    }
    let o = vigil(&[
        "evaluate",
        "--model",
        shipped_model().to_str().unwrap(),
        "--data",
        physionet2019().to_str().unwrap(),
        "--limit",
        "100",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    for key in [
        "auroc",
        "auprc",
        "brier",
        "utility",
        "news2_auroc",
        "news2_utility",
        "patients",
        "rows",
    ] {
        assert!(v.get(key).is_some(), "no {key} in {v}");
    }
    assert_eq!(v["patients"], 100);
    let auroc = v["auroc"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&auroc));
    assert_eq!(v["calibration"].as_array().unwrap().len(), 10);
}
