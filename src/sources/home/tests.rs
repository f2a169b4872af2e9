use super::*;

fn config(patients: u32, days: u32) -> HomeConfig {
    HomeConfig {
        patients,
        days,
        ..HomeConfig::default()
    }
}

fn all(sim: &mut HomeSimulator) -> Vec<Observation> {
    let mut out = Vec::new();
    while sim.fill(4096, &mut out).unwrap() {}
    out.into_iter()
        .filter_map(|i| match i {
            SourceItem::Observation(o, _) => Some(o),
            _ => None,
        })
        .collect()
}

#[test]
fn the_same_seed_gives_the_same_cohort_and_a_patient_is_the_same_in_a_bigger_one() {
    let a = all(&mut HomeSimulator::new(&config(4, 3)));
    assert_eq!(a, all(&mut HomeSimulator::new(&config(4, 3))));
    let bigger = all(&mut HomeSimulator::new(&config(9, 3)));
    let of = |obs: &[Observation], p: &str| -> Vec<Observation> {
        obs.iter()
            .filter(|o| o.patient().as_str() == p)
            .cloned()
            .collect()
    };
    assert_eq!(of(&a, "home-0002"), of(&bigger, "home-0002"));
}

#[test]
fn observations_come_in_time_order_with_cgm_every_five_minutes() {
    let obs = all(&mut HomeSimulator::new(&config(12, 4)));
    assert!(obs.windows(2).all(|w| w[0].time() <= w[1].time()));
    let kinds: std::collections::BTreeSet<Vital> = obs.iter().map(|o| o.vital()).collect();
    for vital in [
        Vital::Glucose,
        Vital::Insulin,
        Vital::PumpEvent,
        Vital::Medication,
        Vital::Inhaler,
        Vital::DeviceStatus,
    ] {
        assert!(kinds.contains(&vital), "no {vital:?}");
    }
    let cgm: Vec<i64> = obs
        .iter()
        .filter(|o| o.vital() == Vital::Glucose && o.patient().as_str() == "home-0002")
        .map(|o| o.time().micros())
        .collect();
    let five = cgm.windows(2).filter(|w| w[1] - w[0] == 5 * MIN).count();
    assert!(five * 10 >= cgm.len() * 9, "{five} of {}", cgm.len());
}

#[test]
fn the_registry_is_valid_and_the_truth_has_every_kind_of_episode() {
    let mut sim = HomeSimulator::new(&config(20, 14));
    let rows = crate::registry::parse(&sim.registry()).unwrap();
    assert!(rows.len() >= 10, "{}", rows.len());
    all(&mut sim);
    let truth = sim.truth();
    for kind in [
        TruthKind::NocturnalHypo,
        TruthKind::MissedDose,
        TruthKind::DeviceOutage,
        TruthKind::Occlusion,
        TruthKind::SensorExpiring,
        TruthKind::GlucoseBelow55,
    ] {
        assert!(truth.iter().any(|t| t.kind == kind), "no {kind:?}");
    }
    // A hypo runs from its crossing below 55 to its recovery.
    for t in truth.iter().filter(|t| t.kind == TruthKind::NocturnalHypo) {
        assert!(t.start < t.end, "{t:?}");
    }
}
